"""Wiring: intake -> assess -> retrieve -> doctor <-> pharmacist (<= N rounds)
-> safety gate -> report -> sign-off (interrupt) -> report. Referral and
no-treatment decisions take the referral-note path instead of the loop.

One wiring for both hosts: clinreason's Pipeline compiles it with its own checkpointer (SQLite or
Postgres); a LangGraph Server compiles it without one (`checkpointer=None`) and supplies its own
(graph/server.py)."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from clinreason.agents import Doctor, Pharmacist
from clinreason.config import Settings
from clinreason.graph.nodes import Nodes
from clinreason.graph.state import GraphInput, GraphState
from clinreason.graph.tracing import traced


def recursion_limit(max_rounds: int) -> int:
    """Steps: intake, assess, retrieve, 2 per round, gate, report, sign-off, report, plus slack."""
    return 2 * max_rounds + 12


def build_graph(settings: Settings, doctor: Doctor, pharmacist: Pharmacist, checkpointer: Any = None) -> Any:
    n = Nodes(settings, doctor, pharmacist)
    g = StateGraph(GraphState, input_schema=GraphInput)
    for name, fn in {
        "intake": n.intake, "assess": n.assess, "retrieve": n.retrieve, "doctor": n.doctor_step,
        "pharmacist": n.pharmacist_step, "referral": n.referral_step, "gate": n.gate, "report": n.report,
        "signoff": n.signoff,
    }.items():
        g.add_node(name, traced(fn, name, settings))
    g.add_edge(START, "intake")
    g.add_edge("intake", "assess")
    g.add_edge("assess", "retrieve")
    g.add_conditional_edges("retrieve", n.after_retrieve, {"doctor": "doctor", "referral": "referral"})
    g.add_edge("doctor", "pharmacist")
    g.add_conditional_edges("pharmacist", n.after_review, {"doctor": "doctor", "gate": "gate"})
    g.add_edge("referral", "gate")
    g.add_edge("gate", "report")
    g.add_conditional_edges("report", n.after_report, {"signoff": "signoff", "end": END})
    g.add_edge("signoff", "report")
    return g.compile(checkpointer=checkpointer)
