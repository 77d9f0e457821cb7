"""Commands that run no graph and no search import neither LangGraph/LangChain (langsmith alone costs
about 0.7 s), nor the retrieval stack, nor the optional SDKs of other interfaces; and no command
loads what only another uses (issue 20, part 3)."""

from __future__ import annotations

import json
import os
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


def _probe(script: str, env: dict[str, str] | None = None) -> dict:
    """Run `script` in a fresh interpreter (no cache of this process warm) and return the JSON it prints last."""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


# The retrieve node's plan for a sample whose searches are all in the result cache, each seeded with
# the passage of a rule the case does not cite, so the evidence shows that the cache served it.
CACHE_HIT = """
import json, sys
from clinreason.config import get_settings
from clinreason.knowledge import chunking, retrieval
from clinreason.protocols.registry import resolve

chunked = []
real = chunking.chunk_document
chunking.chunk_document = lambda doc, scope=None: (chunked.append(scope), real(doc, scope))[1]
spec_name, sample = sys.argv[1], sys.argv[2]
from clinreason.protocols.registry import get_spec
spec = get_spec(spec_name)
req = resolve({"protocol": spec.id, **json.loads(spec.read_text("samples", sample + ".json"))})
result = req.evaluate()
scope = (result.protocol_id, result.profile_id)
settings = get_settings()
cache = retrieval._result_cache(settings)
searches = spec.evidence_searches(result)
cited = {h.rule_id for h in result.rules_fired} | {c.rule_id for c in result.cautions} | {
    x.rule_id for o in result.options for x in o.exclusions}
seeded = spec.rule_chunk_id(next(r for r in spec.rules if r not in cited), scope[1])  # in the evidence by a search only
for s in searches:
    cache.put(cache.key(s.query, s.k, s.filters, "hybrid", scope, s.parts), [(seeded, 0.5)])
from clinreason.graph.evidence import gather_evidence
evidence = gather_evidence(spec, result, settings)
print(json.dumps({"scopes": sorted({tuple(s) for s in chunked}), "every_chunk": chunking.every_chunk.cache_info().misses,
                  "searches": len(searches), "seeded_hit": any(e.chunk_id == seeded and e.score == 0.5 for e in evidence),
                  "index": "clinreason.knowledge.index" in sys.modules}))
"""


# (the last two have exclusions: their monograph sections are looked up in the assessment's own knowledge base)
@pytest.mark.parametrize(("protocol", "sample"), [("uti-cystitis", "uncomplicated"), ("lyme-pep", "lyme-adult-prophylaxis"),
                                                  ("uti-cystitis", "methotrexate"), ("lyme-pep", "lyme-doxycycline-allergy")])
def test_a_cached_retrieval_chunks_only_the_assessments_knowledge_base(protocol, sample, tmp_path):
    """A cache hit looks up its chunk ids without chunking every knowledge base (markdown parsing,
    option linking): only the assessment's own, which its cache key's kb version needs anyway."""
    got = _probe(CACHE_HIT.replace("sys.argv[1], sys.argv[2]", f"{protocol!r}, {sample!r}"),
                 env={**os.environ, "CLINREASON_DATA_DIR": str(tmp_path)})  # its own result cache: seeded hits stay here
    assert got["searches"] and got["seeded_hit"] and not got["index"]  # the searches were served from the cache
    assert got["every_chunk"] == 0
    assert {tuple(s) for s in got["scopes"]} <= {(protocol, p) for p in ("CA-ON", "US-IDSA")}
    assert len(got["scopes"]) == 1


PROTOCOL_LOADS = """
import json, sys
from clinreason.protocols.plan import Plan
from clinreason.protocols.registry import get_spec, legacy_chunk_id, registry, resolve, sample
spec, _ = sample("uncomplicated")
req = resolve(json.loads(spec.read_text("samples", "uncomplicated.json")))
Plan.model_validate({"action": "no_antibiotics", "reason": "r", "decided_by": "protocol"})  # legacy plan action
legacy_chunk_id("rules#x")
one = [m for m in sys.modules if m.startswith("clinreason.protocols.")]
lyme = sample("lyme-adult-prophylaxis")[0].id
unknown = []
for named in ("no-such-protocol", 5):
    try:
        resolve({**json.loads(spec.read_text("samples", "uncomplicated.json")), "protocol": named})
    except Exception as exc:
        unknown.append(exc.field_errors()[0]["message"])
print(json.dumps({"before": one, "default": req.protocol_id, "lyme": lyme, "all": list(registry()), "unknown": unknown}))
"""


def test_one_protocols_request_loads_no_other_protocol():
    """A sample, a request and a plan of the default protocol import no other protocol's package;
    naming another loads it, and the registry still lists every protocol."""
    got = _probe(PROTOCOL_LOADS)
    assert got["default"] == "uti-cystitis" and got["lyme"] == "lyme-pep"
    assert "clinreason.protocols.uti_cystitis" in got["before"]
    assert not [m for m in got["before"] if m.startswith("clinreason.protocols.lyme_pep")]
    assert got["all"] == ["uti-cystitis", "lyme-pep"]
    assert got["unknown"] == ["unknown protocol 'no-such-protocol' (available: lyme-pep, uti-cystitis)",
                              "unknown protocol 5 (available: lyme-pep, uti-cystitis)"]


LEGACY_ELSEWHERE = """
import json
from clinreason.protocols.lyme_pep import SPEC
from clinreason.protocols.registry import registry
SPEC.legacy_plan_actions = {"old": "no_treatment"}
try:
    registry()
except ValueError as exc:
    print(json.dumps(str(exc)))
"""


def test_only_the_default_protocol_may_read_records_from_before_plug_ins():
    """Plans and chunk ids of old records are read with the default protocol's renames alone (no other
    protocol is loaded for them), so the registry refuses another protocol that declares some."""
    assert _probe(LEGACY_ELSEWHERE) == "only the default protocol has records from before plug-ins, not lyme-pep"


MARKDOWN_ONLY = """
import json, sys
from clinreason.rendering import HTML, MARKDOWN, Document
doc = Document(kind="report", markdown="# Report\\n\\n*text*", title="Report", assessment_id="a", status="final", draft=False)
md = doc.render(MARKDOWN).decode()
before = "markdown_it" in sys.modules
html = doc.render(HTML).decode()
print(json.dumps({"md": md, "before": before, "after": "markdown_it" in sys.modules, "html": "<em>text</em>" in html}))
"""


def test_markdown_output_imports_no_markdown_parser():
    """Only HTML (and PDF, made from it) needs markdown-it: a Markdown report is the stored text."""
    got = _probe(MARKDOWN_ONLY)
    assert got["md"] == "# Report\n\n*text*" and got["html"]
    assert got["before"] is False and got["after"] is True
