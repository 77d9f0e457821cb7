"""Commands that run no graph and no search import neither LangGraph/LangChain (langsmith alone costs
about 0.7 s), nor the retrieval stack, nor the optional SDKs of other interfaces (issue 20, part 3)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("langgraph", "langchain_core", "langsmith", "torch", "sentence_transformers", "chromadb", "numpy", "mcp", "fhirclient")
# Runs the CLI in this process, then prints which heavy modules it loaded.
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
    print("LOADED " + json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)
"""


@pytest.mark.parametrize(("args", "says"), [
    (["samples"], "raas-nitrofurantoin-allergy"),
    (["protocols"], "lyme-pep"),
    (["protocols", "--json"], '"uti-cystitis"'),
    (["assess", "--sample", "uncomplicated", "--mode", "deterministic", "--json"], '"decision": "recommend_treatment"'),
    (["assess", "--sample", "lyme-adult-prophylaxis", "--mode", "deterministic"], "doxycycline"),
    (["show", "0" * 32], "no assessment"),
    (["--help"], "assess"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_command_loads_nothing_heavy(args, says):
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED "))
    assert json.loads(line.removeprefix("LOADED ")) == [], done.stderr[-2000:]
    assert says in done.stdout + done.stderr  # the command did its job, not just fail early
