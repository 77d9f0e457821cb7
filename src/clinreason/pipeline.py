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
from clinreason.errors import Conflict, NotFound
from clinreason.graph.build import build_graph, recursion_limit
from clinreason.graph.persistence import make_checkpointer
from clinreason.graph.state import request_of
from clinreason.graph.tracing import init_tracing
from clinreason.protocols.plan import InvalidSignoff, Plan, UnacknowledgedChecks, validate_signoff
from clinreason.protocols.registry import Validated
from clinreason.store import ApiKey, SignoffClaim, Store

Progress = Callable[[str], None]


class AssessmentNotFound(NotFound):
    """No assessment with that id in the checkpointer or store."""

    problem_type = "not-found"
    title = "Not found"

    def detail(self) -> str:
        # The same answer for "no such id" and "another site's": ids cannot be probed across sites.
        return f"no assessment {str(self)!r}"


class NotAwaitingSignoff(Conflict):
    """The assessment is final, never needed sign-off, or another prescriber's claim got there first
    (`winner` is that claim)."""

    problem_type = "not-awaiting-signoff"
    title = "Not awaiting sign-off"

    def __init__(self, message: str, winner: SignoffClaim | None = None):
        super().__init__(message)
        self.winner = winner

    def field_errors(self) -> list[dict[str, str]]:
        w = self.winner
        return [{"field": "action", "message": f"already decided: {w.action} by {w.prescriber}"}] if w else []


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
        "input_sources": v.get("input_sources"),
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

    def _drive(self, graph_input: Any, assessment_id: str, progress: Progress | None, submitted_by: dict[str, Any] | None) -> Assessment:
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
        # Who submitted is part of the record (and of its audit), kept across sign-off.
        assessment = assessment.model_copy(update={"audit": {**(assessment.audit or {}), "submitted_by": submitted_by}})
        site = (submitted_by or {}).get("site")
        self.store.put({**assessment.model_dump(mode="json"), "updated_at": _now()}, site=site,
                       submitted_by=(submitted_by or {}).get("key_id"))
        return assessment

    def run(self, request: Validated | dict[str, Any], *, progress: Progress | None = None, submitter: ApiKey | None = None,
            input_sources: dict[str, Any] | None = None) -> Assessment:
        """Assess a patient. `submitter` is the API key that sent it (None: run locally, no site);
        `input_sources` the provenance of an input mapped from FHIR (kept in the record and the report)."""
        parsed = validate(request)
        aid = uuid.uuid4().hex
        state = {"assessment_id": aid, "created_at": _now(), "protocol_id": parsed.protocol_id, "patient": parsed.patient_json}
        if input_sources:
            state["input_sources"] = input_sources
        who = ({"key_id": submitter.key_id, "name": submitter.name, "site": submitter.site} if submitter
               else {"key_id": None, "name": "local user (CLI)", "site": None})
        return self._drive(state, aid, progress, who)

    def signoff(self, assessment_id: str, action: str, prescriber_id: str, comment: str = "", agent: str | None = None,
                *, acknowledged: list[str] | None = None, progress: Progress | None = None, key_id: str | None = None) -> Assessment:
        """Apply a prescriber's decision, exactly once however many prescribers send one at the same time.

        Order: refuse what is invalid (no claim taken), claim the sign-off atomically in the store,
        resume the graph (only the claim's winner does), store the result. Everyone else gets
        NotAwaitingSignoff carrying the winning claim. Approving (or amending to) a plan with blocking
        checks raises UnacknowledgedChecks unless `acknowledged` names each unrecognised entry.
        """
        record = self.store.get(assessment_id)
        snapshot = self.graph.get_state(self._config(assessment_id))
        if record is None or not snapshot.values:
            raise AssessmentNotFound(assessment_id)
        if snapshot.values.get("status") != "awaiting_signoff" or "signoff" not in snapshot.next:
            raise self._already_decided(assessment_id, snapshot.values.get("status"))
        payload = {"action": action, "prescriber_id": prescriber_id, "comment": comment, "agent": agent, "signed_at": _now(),
                   "acknowledged": [] if acknowledged is None else acknowledged}  # a bare string is refused, not split
        # Refuse before claiming or touching the graph.
        validate_signoff(payload, request_of(snapshot.values), Plan.model_validate(snapshot.values["gate"]["plan"]))
        claim = SignoffClaim(action=action, prescriber=prescriber_id, key_id=key_id, comment=comment, agent=agent,
                             acknowledged=payload["acknowledged"], claimed_at=payload["signed_at"])
        if not self.store.claim_signoff(assessment_id, claim):
            raise self._already_decided(assessment_id, "signing")
        try:
            result = self._drive(Command(resume=payload), assessment_id, progress, (record.get("audit") or {}).get("submitted_by"))
        except BaseException:
            self.store.release_signoff(assessment_id)  # the graph did not resume: let a prescriber try again
            raise
        self.store.signoff_applied(assessment_id)
        return result

    def _already_decided(self, assessment_id: str, status: str | None) -> NotAwaitingSignoff:
        winner = self.store.signoff_of(assessment_id)
        if winner is None:
            return NotAwaitingSignoff(f"assessment {assessment_id} is {status!r}, not awaiting sign-off")
        state = "signed off" if winner.applied_at else "being signed off"
        return NotAwaitingSignoff(f"assessment {assessment_id} is already {state}: {winner.action} by {winner.prescriber} "
                                  f"at {winner.claimed_at}", winner)

    def warm_up(self) -> int:
        """Open every knowledge base's index with what a search reads, embed every text the evidence plan
        can search for (already done by `kb build`: then no model loads), and run the retrieval plan of
        every bundled sample, so the indexes and caches are loaded before the first request and no
        assessment, however new its patient, loads the embedding model or builds an index.
        Nothing is stored and no agent is called. Returns the number of evidence plans run."""
        from clinreason.graph.evidence import gather_evidence
        from clinreason.knowledge.corpus import all_scopes
        from clinreason.knowledge.retrieval import warm_search
        from clinreason.samples import load_sample, sample_index

        for scope in all_scopes():
            warm_search(self.settings, scope)
        for name in sample_index():
            req = validate(load_sample(name))
            gather_evidence(req.spec, req.evaluate(), self.settings)
        return len(sample_index())

    def get(self, assessment_id: str, *, site: str | None = None) -> Assessment:
        """A stored assessment; with `site`, only one that belongs to that site."""
        record = self.store.get(assessment_id, site=site)
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
