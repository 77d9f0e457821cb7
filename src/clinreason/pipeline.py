"""Full mode: run the graph, persist the assessment, apply prescriber sign-off.

Each assessment is one LangGraph thread (thread id = assessment id) in the
checkpointer, so an assessment awaiting sign-off survives a restart: a new
process resumes it with `Pipeline().signoff(...)`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from langgraph.types import Command

from clinreason.agents import make_agents
from clinreason.assessment import Assessment, validate
from clinreason.config import Settings, get_settings
from clinreason.graph.build import build_graph, recursion_limit
from clinreason.graph.nodes import InvalidSignoff, UnacknowledgedChecks, validate_signoff
from clinreason.graph.persistence import make_checkpointer
from clinreason.graph.tracing import init_tracing
from clinreason.protocols.patient import Patient
from clinreason.store import Store

Progress = Callable[[str], None]


class AssessmentNotFound(KeyError):
    """No assessment with that id in the checkpointer or store."""


class NotAwaitingSignoff(RuntimeError):
    """The assessment is final (or never needed sign-off)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def assessment_from_state(v: dict[str, Any]) -> Assessment:
    gate = v["gate"]
    plan = gate["plan"]
    return Assessment.model_validate({
        "mode": "full",
        "decision": v["protocol"]["decision"],
        "recommendation": plan.get("regimen") if plan["action"] == "treat" else None,
        "protocol": v["protocol"],
        "input_hash": v["audit"]["input_hash"],
        "formulary_version": v["audit"]["formulary_version"],
        "id": v["assessment_id"],
        "status": v["status"],
        "plan": plan,
        "report_markdown": v["report_markdown"],
        "citations": v["citations"],
        "rounds": v.get("rounds") or [],
        "referral": v.get("referral"),
        "safety": gate,
        "evidence": [e["chunk_id"] for e in v.get("evidence") or []],
        "audit": v["audit"],
        "signoff": v.get("signoff"),
    })


class Pipeline:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        init_tracing(self.settings)
        doctor, pharmacist = make_agents(self.settings)
        self.graph = build_graph(self.settings, doctor, pharmacist, make_checkpointer(self.settings))
        self.store = Store(self.settings)

    def _config(self, assessment_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": assessment_id}, "recursion_limit": recursion_limit(self.settings.max_rounds)}

    def _drive(self, graph_input: Any, assessment_id: str, progress: Progress | None) -> Assessment:
        # durability="exit": one checkpoint write when the run ends or pauses for
        # sign-off. The final state comes from the stream, not a second read.
        values: dict[str, Any] = {}
        for mode, chunk in self.graph.stream(graph_input, self._config(assessment_id), stream_mode=["updates", "values"], durability="exit"):
            if mode == "values":
                values = chunk
            elif progress:
                for node in chunk:
                    if not node.startswith("__"):
                        progress(node)
        assessment = assessment_from_state(values)
        self.store.put({**assessment.model_dump(mode="json"), "updated_at": _now()})
        return assessment

    def run(self, patient: Patient | dict[str, Any], *, progress: Progress | None = None) -> Assessment:
        parsed = validate(patient)
        aid = uuid.uuid4().hex
        state = {"assessment_id": aid, "created_at": _now(), "patient": parsed.model_dump(mode="json")}
        return self._drive(state, aid, progress)

    def signoff(self, assessment_id: str, action: str, prescriber_id: str, comment: str = "", agent: str | None = None,
                *, acknowledged: list[str] | None = None, progress: Progress | None = None) -> Assessment:
        """Apply a prescriber's decision. Approving (or amending to) a plan with blocking checks
        raises UnacknowledgedChecks unless `acknowledged` names each unrecognised entry (text or field)."""
        snapshot = self.graph.get_state(self._config(assessment_id))
        if not snapshot.values:
            raise AssessmentNotFound(assessment_id)
        if snapshot.values.get("status") != "awaiting_signoff" or "signoff" not in snapshot.next:
            raise NotAwaitingSignoff(f"assessment {assessment_id} is {snapshot.values.get('status')!r}, not awaiting sign-off")
        payload = {"action": action, "prescriber_id": prescriber_id, "comment": comment, "agent": agent, "signed_at": _now(),
                   "acknowledged": [] if acknowledged is None else acknowledged}  # a bare string is refused, not split
        validate_signoff(payload, snapshot.values)  # refuse before touching the graph
        return self._drive(Command(resume=payload), assessment_id, progress)

    def get(self, assessment_id: str) -> Assessment:
        record = self.store.get(assessment_id)
        if record is None:
            raise AssessmentNotFound(assessment_id)
        return Assessment.from_record(record)


_lock = threading.Lock()
_pipelines: dict[str, Pipeline] = {}


def get_pipeline(settings: Settings | None = None) -> Pipeline:
    settings = settings or get_settings()
    key = settings.model_dump_json()
    with _lock:
        if key not in _pipelines:
            _pipelines[key] = Pipeline(settings)
        return _pipelines[key]


__all__ = ["AssessmentNotFound", "InvalidSignoff", "NotAwaitingSignoff", "Pipeline", "UnacknowledgedChecks", "get_pipeline"]
