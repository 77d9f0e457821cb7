"""Wiring: [intake, assess, retrieve] -> doctor <-> pharmacist (<= N rounds)
-> [safety gate, report] -> [sign-off (interrupt), report]; bracketed steps share a node. Referral and
no-treatment decisions take the referral-note path instead of the loop.

One wiring for both hosts: clinreason's Pipeline compiles it with its own checkpointer (SQLite or
Postgres); a LangGraph Server compiles it without one (`checkpointer=None`) and supplies its own
(graph/server.py)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from clinreason.agents import Doctor, Pharmacist
from clinreason.config import Settings
from clinreason.graph.executor import use_shared_executor
from clinreason.graph.nodes import Nodes
from clinreason.graph.state import APPENDED, GraphInput, GraphState, append
from clinreason.graph.tracing import traced


def recursion_limit(max_rounds: int) -> int:
    """Supersteps: assess, 2 per round, report, sign-off, plus slack."""
    return 2 * max_rounds + 8


def _chain(*steps: Callable[..., dict[str, Any]]) -> Callable[[GraphState, RunnableConfig], dict[str, Any]]:
    """Steps that always run one after the other, as one node (one superstep): each sees the state
    with the earlier steps' updates applied (list fields appended, as their reducers do), and the
    node returns their updates together. Each superstep costs LangGraph's task, channel and
    checkpoint bookkeeping; the steps stay separate functions (and separate Weave ops)."""
    takes_config = [len(inspect.signature(step).parameters) > 1 for step in steps]

    def node(s: GraphState, config: RunnableConfig) -> dict[str, Any]:
        state: dict[str, Any] = dict(s)
        total: dict[str, Any] = {}
        for step, with_config in zip(steps, takes_config, strict=True):
            update = step(state, config) if with_config else step(state)
            for key, value in update.items():
                if key in APPENDED:
                    state[key] = append(state.get(key), value)
                    total[key] = append(total.get(key), value)
                else:
                    state[key] = total[key] = value
        return total

    node.__name__ = "_then_".join(step.__name__ for step in steps)
    return node


def build_graph(settings: Settings, doctor: Doctor, pharmacist: Pharmacist, checkpointer: Any = None) -> Any:
    use_shared_executor()
    n = Nodes(settings, doctor, pharmacist)

    def t(fn: Callable[..., dict[str, Any]], name: str) -> Callable[..., dict[str, Any]]:
        return traced(fn, name, settings)

    g = StateGraph(GraphState, input_schema=GraphInput)
    # Six nodes, not nine: intake, assess and retrieve always run together, so do the safety gate
    # and the report, and sign-off and the final report. The loop keeps the doctor and the
    # pharmacist as nodes of their own.
    g.add_node("assess", _chain(t(n.intake, "intake"), t(n.assess, "assess"), t(n.retrieve, "retrieve")))
    g.add_node("doctor", t(n.doctor_step, "doctor"))
    g.add_node("pharmacist", t(n.pharmacist_step, "pharmacist"))
    g.add_node("referral", t(n.referral_step, "referral"))
    g.add_node("report", _chain(t(n.gate, "gate"), t(n.report, "report")))
    g.add_node("signoff", _chain(t(n.signoff, "signoff"), t(n.report, "report")))
    g.add_edge(START, "assess")
    g.add_conditional_edges("assess", n.after_retrieve, {"doctor": "doctor", "referral": "referral"})
    g.add_edge("doctor", "pharmacist")
    g.add_conditional_edges("pharmacist", n.after_review, {"doctor": "doctor", "gate": "report"})
    g.add_edge("referral", "report")
    g.add_conditional_edges("report", n.after_report, {"signoff": "signoff", "end": END})
    g.add_edge("signoff", END)
    return g.compile(checkpointer=checkpointer)
