"""Commands that run no graph and no search import neither LangGraph/LangChain (langsmith alone costs
about 0.7 s), nor the retrieval stack, nor the optional SDKs of other interfaces; and no command
loads what only another uses (issue 20, part 3)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("langgraph", "langchain_core", "langsmith", "torch", "sentence_transformers", "chromadb", "numpy", "mcp", "fhirclient")
# Runs the CLI in this process, then prints which heavy modules it loaded (with a third argument,
# a package counts as loaded when any of its submodules is).
PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["clinreason", *json.loads(sys.argv[1])]
try:
    from clinreason.cli import app
    app()
except SystemExit:
    pass
finally:
    print("LOADED " + json.dumps([m for m in heavy if m in sys.modules
                                  or len(sys.argv) > 3 and any(k.startswith(m + ".") for k in sys.modules)]), file=sys.stderr)
"""


@pytest.mark.parametrize(("args", "says"), [
    (["samples"], "raas-nitrofurantoin-allergy"),
    (["protocols"], "lyme-pep"),
    (["protocols", "--json"], '"uti-cystitis"'),
    (["assess", "--sample", "uncomplicated", "--mode", "deterministic", "--json"], '"decision": "recommend_treatment"'),
    (["assess", "--sample", "lyme-adult-prophylaxis", "--mode", "deterministic"], "doxycycline"),
    (["show", "0" * 32], "no assessment"),
    (["--help"], "assess"),
    (["signoff", "--help"], "--acknowledge"),
    (["kb", "show", "--help"], "Usage"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_command_loads_nothing_heavy(args, says):
    loaded, output = _run(args, HEAVY)
    assert loaded == [], output[-2000:]
    assert says in output  # the command did its job, not just fail early


def _run(args: list[str], watch: tuple[str, ...]) -> tuple[list[str], str]:
    """Which of `watch` (modules, or packages with all their submodules) the command loaded, and its output."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(watch), "prefix"], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED "))
    return json.loads(line.removeprefix("LOADED ")), done.stdout + done.stderr


OTHER_COMMANDS = ("clinreason.cli.admin", "clinreason.cli.evaluation", "clinreason.cli.kb", "clinreason.cli.mcp")


# Nothing the command does not use: another command's module, the store (SQLAlchemy), the assessment
# model (and the agent and graph models its fields need), the protocols, the renderers.
@pytest.mark.parametrize(("args", "unused"), [
    (["--help"], ("clinreason.assessment", "clinreason.protocols", "clinreason.config", "clinreason.store", "sqlalchemy",
                  "pydantic")),
    (["signoff", "--help"], ("clinreason.pipeline", "clinreason.assessment", "clinreason.protocols", "clinreason.store",
                             "sqlalchemy", *OTHER_COMMANDS)),
    (["samples"], ("clinreason.assessment", "clinreason.agents", "clinreason.graph", "clinreason.store", "sqlalchemy",
                   "clinreason.rendering", *OTHER_COMMANDS)),
    (["protocols"], ("clinreason.assessment", "clinreason.agents", "clinreason.graph", "clinreason.store", "sqlalchemy",
                     "clinreason.rendering", *OTHER_COMMANDS)),
    (["show", "0" * 32], ("clinreason.assessment", "clinreason.protocols", "clinreason.rendering", *OTHER_COMMANDS)),
    (["assess", "--sample", "uncomplicated", "--mode", "deterministic", "--json"],
     ("clinreason.store", "sqlalchemy", "clinreason.pipeline", "clinreason.rendering", *OTHER_COMMANDS)),
], ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_command_loads_only_what_it_uses(args, unused):
    loaded, output = _run(args, unused)
    assert loaded == [], output[-2000:]


def test_the_cli_modes_are_the_assessment_modes():
    from clinreason.assessment import MODES
    from clinreason.cli.common import MODES as CLI_MODES

    assert CLI_MODES == MODES
