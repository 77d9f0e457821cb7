"""The graph as LangGraph Server / Studio hosts it (issue 19, part 2): langgraph.json's factory,
per-run configuration, the input schema, the list reducers, and one assessment driven through
`langgraph dev` with langgraph-sdk, sign-off interrupt and `Command(resume=...)` included."""

from __future__ import annotations

import importlib.util
import json
import operator
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langgraph.channels.binop import BinaryOperatorAggregate
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import ValidationError
from served import free_port

from clinreason.agents.rules import RulesDoctor, RulesPharmacist
from clinreason.config import Settings
from clinreason.graph.build import build_graph, recursion_limit
from clinreason.graph.configuration import Configuration
from clinreason.graph.server import make_graph, server_graph
from clinreason.graph.state import GraphInput, append
from clinreason.samples import load_sample

REPO = Path(__file__).resolve().parents[2]
SAMPLE = "raas-nitrofurantoin-allergy"
CONFIGURABLE = {"protocol": "uti-cystitis", "profile": "CA-ON", "agent_backend": "rules", "max_rounds": 3}
SIGNOFF = {"action": "approve", "prescriber_id": "RPh-4321", "comment": "reviewed via LangGraph Server",
           "agent": None, "signed_at": "2026-01-01T00:00:00+00:00", "acknowledged": []}


# --- Configuration ---------------------------------------------------------------------------
def test_configuration_reads_its_keys_from_configurable_and_ignores_the_rest():
    conf = Configuration.from_runnable_config({"configurable": {**CONFIGURABLE, "thread_id": "t-1", "checkpoint_ns": ""}})
    assert conf == Configuration(protocol="uti-cystitis", profile="CA-ON", agent_backend="rules", max_rounds=3)
    assert Configuration.from_runnable_config(None) == Configuration()
    assert Configuration.from_runnable_config({"configurable": {"max_rounds": None}}) == Configuration()
    settings = Configuration(agent_backend="llm", max_rounds=5).settings(Settings())
    assert (settings.agent_backend, settings.max_rounds) == ("llm", 5)
    base = Settings()
    assert Configuration().settings(base) is base


@pytest.mark.parametrize("bad", [{"max_rounds": 0}, {"max_rounds": 11}, {"agent_backend": "gpt"}])
def test_configuration_refuses_bad_values_naming_the_key(bad):
    with pytest.raises(ValidationError) as info:
        Configuration.from_runnable_config({"configurable": bad})
    assert info.value.errors()[0]["loc"] == (next(iter(bad)),)


# --- reducers and the factory ----------------------------------------------------------------
def test_append_reducer():
    assert append([1], [2, 3]) == [1, 2, 3] == operator.add([1], [2, 3])
    assert append(None, [1]) == [1] and append([1], None) == [1] and append(None, None) == []


def test_server_graph_has_no_checkpointer_an_input_schema_and_reducers():
    graph = make_graph({"configurable": CONFIGURABLE})
    assert graph.checkpointer is None  # the server attaches its own
    assert graph.config["recursion_limit"] == recursion_limit(3)
    assert make_graph({"configurable": {**CONFIGURABLE, "thread_id": "other"}}) is graph  # cached per backend and cap
    assert set(graph.get_input_jsonschema()["properties"]) == set(GraphInput.__annotations__)
    for name in ("evidence", "rounds", "outcomes"):
        channel = graph.channels[name]
        assert isinstance(channel, BinaryOperatorAggregate) and channel.operator is append, name
    assert not isinstance(graph.channels["citations"], BinaryOperatorAggregate)  # rewritten by each report


class _SecondOpinionPharmacist(RulesPharmacist):
    """Sends round 1 back (modify to the same option), approves from round 2."""

    def review(self, ctx, proposal, history):
        review, outcome = super().review(ctx, proposal, history)
        if not history:
            review = review.model_copy(update={"verdict": "modify", "suggested_agent": proposal.agent})
        return review, outcome


def test_rounds_and_outcomes_append_through_the_reducers_on_a_server_style_run():
    graph = build_graph(Settings(), RulesDoctor(), _SecondOpinionPharmacist())  # no checkpointer, as the server compiles it
    graph = graph.copy(update={"checkpointer": InMemorySaver()})  # ...and as the server then attaches one
    config = {"configurable": {"thread_id": "reducers", **CONFIGURABLE}}
    state = graph.invoke({"patient": load_sample(SAMPLE)}, config)
    n = len(state["rounds"])
    assert n >= 2 and [r["number"] for r in state["rounds"]] == list(range(1, n + 1))
    assert len(state["outcomes"]) == 2 * n and {o["backend"] for o in state["outcomes"]} == {"rules"}
    assert [(r["doctor_backend"], r["pharmacist_backend"]) for r in state["rounds"]] == [("rules", "rules")] * n
    assert len(state["evidence"]) == state["audit"]["retrieved_chunks"] > 0
    assert state["assessment_id"] == "reducers" and state["status"] == "awaiting_signoff"
    state = graph.invoke(Command(resume=SIGNOFF), config)
    assert state["status"] == "final" and len(state["rounds"]) == n and len(state["outcomes"]) == 2 * n
    with pytest.raises(ValueError, match="new thread"):  # one assessment per thread: the lists would mix two cases
        graph.invoke({"patient": load_sample(SAMPLE)}, config)


class _NeverSatisfiedPharmacist(RulesPharmacist):
    def review(self, ctx, proposal, history):
        review, outcome = super().review(ctx, proposal, history)
        return review.model_copy(update={"verdict": "modify", "suggested_agent": proposal.agent}), outcome


def test_the_server_graph_carries_a_recursion_limit_for_its_round_cap():
    # The Pipeline's bound (a 10-round deliberation needs more than 25 steps, fewer than langgraph-api's 10011).
    graph = server_graph(Settings(max_rounds=10), RulesDoctor(), _NeverSatisfiedPharmacist())
    assert graph.config["recursion_limit"] == recursion_limit(10)
    graph = graph.copy(update={"checkpointer": InMemorySaver()})
    state = graph.invoke({"patient": load_sample(SAMPLE)}, {"configurable": {"thread_id": "cap"}})
    assert len(state["rounds"]) == 10 and state["status"] == "awaiting_signoff"


def test_configurable_profile_and_protocol_fill_what_the_input_leaves_out():
    graph = make_graph(None).copy(update={"checkpointer": InMemorySaver()})
    patient = {k: v for k, v in load_sample("lyme-child-weight-dosing-us").items() if k not in ("protocol", "locale_code")}
    config = {"configurable": {"thread_id": "lyme", "protocol": "lyme-pep", "profile": "US-IDSA"}}
    state = graph.invoke({"patient": patient}, config)
    assert (state["protocol"]["protocol_id"], state["protocol"]["profile_id"]) == ("lyme-pep", "US-IDSA")


# --- langgraph dev ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def langgraph_server(kb_index, tmp_path_factory):
    """`langgraph dev` on a free loopback port, offline, stopped with its whole process group."""
    if importlib.util.find_spec("langgraph_api") is None:
        if os.environ.get("CI"):
            pytest.fail("langgraph-api is missing: .ci/run installs the server extra")
        pytest.skip("needs the server extra: pip install -e '.[server]'")
    cli = Path(sys.executable).with_name("langgraph")
    port = free_port()
    # The in-memory runtime keeps its files under ./.langgraph_api: run from a scratch dir, not the repo.
    cwd = tmp_path_factory.mktemp("langgraph-dev")
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false", "LANGSMITH_API_KEY": "",
           "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGCHAIN_CALLBACKS_BACKGROUND": "false", "NO_PROXY": "127.0.0.1,localhost"}
    log = (cwd / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(cli) if cli.exists() else "langgraph", "dev", "--config", str(REPO / "langgraph.json"), "--host", "127.0.0.1",
         "--port", str(port), "--no-browser", "--no-reload"],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 180  # generous: a loaded 2-core machine
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited {proc.returncode}:\n{(cwd / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev not up in 180 s:\n{(cwd / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        log.close()


def test_an_assessment_runs_end_to_end_through_langgraph_dev(langgraph_server):
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=langgraph_server)
    config = {"configurable": CONFIGURABLE}
    times: dict[str, float] = {}

    t = time.perf_counter()
    thread = client.threads.create()
    times["thread_create"] = time.perf_counter() - t
    tid = thread["thread_id"]

    t = time.perf_counter()
    state = client.runs.wait(tid, "clinreason", input={"patient": load_sample(SAMPLE)}, config=config)
    times["run_to_interrupt"] = time.perf_counter() - t
    assert state["status"] == "awaiting_signoff" and state["assessment_id"] == tid
    assert state["protocol"]["decision"] == "recommend_treatment"
    assert state["gate"]["plan"]["option"] == "fosfomycin"
    excluded = {o["option"] for o in state["protocol"]["options"] if o["exclusions"]}
    assert {"trimethoprim", "tmp_smx"} <= excluded
    snapshot = client.threads.get_state(tid)
    assert snapshot["next"] == ["signoff"]
    [pending] = [i["value"] for task in snapshot["tasks"] for i in task["interrupts"]]
    assert pending["plan"]["option"] == "fosfomycin" and pending["allowed_options"] == ["fosfomycin"]

    # A sign-off the graph's validation refuses leaves the thread waiting, asking again with the field errors.
    refused = client.runs.wait(tid, "clinreason", command={"resume": {**SIGNOFF, "action": "bless"}}, config=config)
    assert refused["status"] == "awaiting_signoff"
    snapshot = client.threads.get_state(tid)
    assert snapshot["next"] == ["signoff"]
    [again] = [i["value"] for task in snapshot["tasks"] for i in task["interrupts"]]
    assert again["errors"] == [{"field": "action", "message": "must be approve, amend or reject"}]

    t = time.perf_counter()
    final = client.runs.wait(tid, "clinreason", command={"resume": SIGNOFF}, config=config)
    times["resume_to_final"] = time.perf_counter() - t
    assert final["status"] == "final"
    assert final["signoff"]["action"] == "approve" and final["signoff"]["prescriber_id"] == "RPh-4321"
    assert final["gate"]["plan"]["option"] == "fosfomycin"
    assert "RPh-4321" in final["report_markdown"] and "Awaiting sign-off" not in final["report_markdown"]
    assert client.threads.get_state(tid)["next"] == []
    print("\nlanggraph dev timings (s): " + json.dumps({k: round(v, 3) for k, v in times.items()}))


