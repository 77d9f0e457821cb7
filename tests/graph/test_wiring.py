"""The graph's wiring: steps that always run together share a node, and runs share one thread pool."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from clinreason.graph.build import _chain
from clinreason.graph.executor import shared_executor_active
from clinreason.graph.state import APPENDED
from clinreason.samples import load_sample


def test_the_append_fields_are_read_from_the_state_annotations():
    assert APPENDED == {"evidence", "rounds", "outcomes"}


@given(st.lists(st.integers(), max_size=4), st.lists(st.integers(), max_size=4), st.lists(st.integers(), max_size=4))
def test_a_chained_step_sees_the_earlier_steps_updates_as_the_reducers_apply_them(before, first, second):
    seen = {}

    def one(s):
        return {"evidence": first, "status": "one"}

    def two(s, config):
        seen.update(evidence=s["evidence"], status=s["status"], config=config)
        return {"evidence": second, "status": "two"}

    update = _chain(one, two)({"evidence": before, "status": "start"}, {"configurable": {"thread_id": "t"}})
    assert seen == {"evidence": before + first, "status": "one", "config": {"configurable": {"thread_id": "t"}}}
    # The node returns only the new items; LangGraph's reducer appends them to the state's.
    assert update == {"evidence": first + second, "status": "two"}


def test_a_treatment_runs_four_nodes_and_a_signoff_one_more(offline_pipeline):
    nodes: list[str] = []
    a = offline_pipeline.run(load_sample("uncomplicated"), progress=nodes.append)
    assert nodes == ["assess", "doctor", "pharmacist", "report"] and a.status == "awaiting_signoff"
    nodes.clear()
    signed = offline_pipeline.signoff(a.id, "approve", "RPh-1", progress=nodes.append)
    assert nodes == ["signoff"] and signed.status == "final" and "RPh-1" in signed.report_markdown


def test_a_referral_runs_three_nodes(offline_pipeline):
    nodes: list[str] = []
    a = offline_pipeline.run(load_sample("fever-on-lisinopril"), progress=nodes.append)
    assert nodes == ["assess", "referral", "report"] and a.plan.action == "refer"


def test_graph_runs_share_one_thread_pool(offline_pipeline):
    offline_pipeline.run(load_sample("uncomplicated"))
    assert shared_executor_active()
    # The run's checkpoint save ran on the shared pool, whose threads outlive the run.
    assert any(t.name.startswith("clinreason-graph") for t in threading.enumerate())
