"""Graph nodes. Each is a function of the state (plus its configured agents),
so a node re-run after an interrupt repeats no side effect."""

from __future__ import annotations

import contextvars
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from clinreason import __version__
from clinreason.agents import Doctor, Pharmacist
from clinreason.agents.context import CaseContext
from clinreason.agents.models import (
    AgentOutcome,
    Claim,
    Concern,
    Proposal,
    ReferralNote,
    Review,
    Round,
)
from clinreason.config import Settings
from clinreason.graph.citations import CitationStats, check_claim
from clinreason.graph.configuration import Configuration
from clinreason.graph.evidence import gather_evidence
from clinreason.graph.report import render_report
from clinreason.graph.safety import GateResult, safety_gate
from clinreason.graph.state import (
    GraphState,
    evidence_of,
    gate_of,
    last_review,
    outcomes_of,
    proposal_of,
    protocol_of,
    referral_of,
    request_of,
    rounds_of,
)
from clinreason.knowledge.chunking import Chunk, current_kb_version
from clinreason.knowledge.embeddings import model_id
from clinreason.knowledge.retrieval import chunk_by_id, retrieval_fingerprint
from clinreason.protocols.plan import (
    InvalidSignoff,
    Plan,
    Signoff,
    UnacknowledgedChecks,
    needs_signoff,
    treat_plan,
    validate_signoff,
)
from clinreason.protocols.registry import (
    DEFAULT_PROTOCOL,
    legacy_chunk_id,
    registry,
    resolve,
)


def _checked(obj: Proposal | Review | ReferralNote, ctx: CaseContext, stats: CitationStats):
    """Drop citations that do not resolve or do not support their sentence."""
    def fix(c: Claim) -> Claim:
        return check_claim(c, ctx.passages, stats)

    if isinstance(obj, Proposal):
        return obj.model_copy(update={"rationale": [fix(c) for c in obj.rationale]})
    if isinstance(obj, Review):
        concerns = [Concern(**{**c.model_dump(), "claim": fix(c.claim)}) for c in obj.concerns]
        return obj.model_copy(update={"concerns": concerns, "summary": fix(obj.summary)})
    return obj.model_copy(update={k: [fix(c) for c in getattr(obj, k)] for k in ("reasons", "patient_advice", "avoid_agents")})


def _locale_for(protocol_id: str, profile: str) -> str:
    """The locale code that selects `profile` (a profile id or a locale code) in a protocol;
    an unknown one is passed through for intake to refuse, naming locale_code."""
    spec = registry().get(protocol_id)
    if spec is None or profile in spec.locales:
        return profile
    return next((code for code, pid in spec.locales.items() if pid == profile), profile)


@dataclass
class Nodes:
    settings: Settings
    doctor: Doctor
    pharmacist: Pharmacist
    _reviews: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)  # round 1's early reviews

    @staticmethod
    def _passages(s: GraphState) -> dict[str, Chunk]:
        """The retrieved chunks, by id: the only evidence agents and the report may cite."""
        chunks = chunk_by_id()
        # A state checkpointed before chunk ids were scoped names them unscoped: read them as today's.
        ids = (e.chunk_id if e.chunk_id in chunks else legacy_chunk_id(e.chunk_id) for e in evidence_of(s))
        return {cid: chunks[cid] for cid in ids if cid in chunks}

    def _ctx(self, s: GraphState, deadline: float | None = None) -> CaseContext:
        req = request_of(s)
        return CaseContext(patient=req.patient, protocol=protocol_of(s), passages=self._passages(s), spec=req.spec, deadline=deadline)

    def _deadline(self, s: GraphState) -> float:
        """One budget for all agent calls of an assessment (CLINREASON_ASSESSMENT_TIMEOUT), from the first of them.
        Carried in the state as wall-clock time, so a node run by another worker or process keeps it."""
        return s.get("agents_deadline") or time.time() + self.settings.assessment_timeout

    @staticmethod
    def _stats(s: GraphState) -> CitationStats:
        return CitationStats(**(s.get("citation_stats") or {}))

    # --- pipeline steps ------------------------------------------------------------
    def intake(self, s: GraphState, config: RunnableConfig) -> dict:
        # The one validation of the request inside the graph (the service validated it before the run;
        # a run started elsewhere, e.g. by a LangGraph server, gets the same checks here).
        if s.get("protocol") is not None:
            # The list fields append: a second assessment on one thread would mix two cases.
            raise ValueError(f"thread already holds assessment {s.get('assessment_id')}: start a new thread per assessment")
        conf = Configuration.from_runnable_config(config)
        patient = dict(s["patient"])
        named = patient.pop("protocol", None)
        protocol_id = s.get("protocol_id") or named or conf.protocol or DEFAULT_PROTOCOL
        if conf.profile and not patient.get("locale_code"):
            patient["locale_code"] = _locale_for(protocol_id, conf.profile)
        req = resolve({**patient, "protocol": protocol_id})
        update: dict[str, Any] = {"protocol_id": req.protocol_id, "patient": req.patient_json, "citation_stats": {}}
        # Pipeline runs bring their id and time; a server run is named by its thread.
        if not s.get("assessment_id"):
            update["assessment_id"] = str((config.get("configurable") or {}).get("thread_id") or uuid.uuid4().hex)
        if not s.get("created_at"):
            update["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return update

    def assess(self, s: GraphState) -> dict:
        return {"protocol": request_of(s).evaluate().model_dump(mode="json")}

    def retrieve(self, s: GraphState) -> dict:
        return {"evidence": [e.model_dump() for e in gather_evidence(request_of(s).spec, protocol_of(s), self.settings)]}

    def doctor_step(self, s: GraphState) -> dict:
        deadline = self._deadline(s)
        ctx, stats = self._ctx(s, deadline), self._stats(s)
        history = rounds_of(s)
        ahead = self._review_ahead(ctx, history)
        update: dict[str, Any] = {"agents_deadline": deadline}
        if ahead is None:
            proposal, outcome = self.doctor.propose(ctx, history)
        else:
            # Round 1 with the LLM backend: the pharmacist reviews the first allowed option while the
            # doctor answers. If the doctor proposes it, that review is the round's review; if not, the
            # early call is left to finish unread (its HTTP request cannot be withdrawn) and the
            # pharmacist step reviews the actual proposal, so a differing doctor costs no extra wait.
            early = self._pool().submit(contextvars.copy_context().run, self.pharmacist.review, ctx,
                                        Proposal(action="treat", agent=ahead, rationale=[]), history)
            proposal, outcome = self.doctor.propose(ctx, history)
            agrees = proposal.action == "treat" and proposal.agent == ahead
            if agrees:
                review, review_outcome = early.result()
                update["prepared_review"] = {"agent": ahead, "review": review.model_dump(), "outcome": review_outcome.model_dump()}
            update["review_path"] = (f"parallel, used: the review of {ahead} made while the doctor answered" if agrees else
                                     f"parallel, discarded: the doctor proposed {proposal.agent or proposal.action}, not {ahead}; "
                                     "the proposal was reviewed after it")
        return update | {
            "proposal": _checked(proposal, ctx, stats).model_dump(),
            "outcomes": [outcome.model_dump()],
            "citation_stats": stats.model_dump(),
        }

    def _review_ahead(self, ctx: CaseContext, history: list[Round]) -> str | None:
        """The option whose review starts with the doctor's call (round 1, LLM backend, `parallel_review`
        on): the first the protocol lets a plan use, in the profile's order. None: review after the proposal."""
        if self.settings.agent_backend != "llm" or not self.settings.parallel_review or history:
            return None
        selectable = ctx.protocol.selectable_options
        return next((ev.option for ev in sorted(ctx.protocol.options, key=lambda ev: ev.rank) if ev.option in selectable), None)

    def _pool(self) -> ThreadPoolExecutor:
        if self._reviews is None:
            self._reviews = ThreadPoolExecutor(max_workers=4, thread_name_prefix="clinreason-review")
        return self._reviews

    def pharmacist_step(self, s: GraphState) -> dict:
        ctx, stats = self._ctx(s, self._deadline(s)), self._stats(s)
        proposal = proposal_of(s)
        assert proposal is not None
        history = rounds_of(s)
        prepared = s.get("prepared_review")
        if prepared and not history and proposal.action == "treat" and proposal.agent == prepared["agent"]:
            review, outcome = Review.model_validate(prepared["review"]), AgentOutcome.model_validate(prepared["outcome"])
        else:
            review, outcome = self.pharmacist.review(ctx, proposal, history)
        doctor_backend = AgentOutcome.model_validate(s["outcomes"][-1]).backend
        rnd = Round(number=len(history) + 1, proposal=proposal, review=_checked(review, ctx, stats),
                    doctor_backend=doctor_backend, pharmacist_backend=outcome.backend)
        update: dict[str, Any] = {"prepared_review": None} if prepared else {}
        return update | {
            "rounds": [rnd.model_dump()],
            "outcomes": [outcome.model_dump()],
            "citation_stats": stats.model_dump(),
        }

    def referral_step(self, s: GraphState) -> dict:
        deadline = self._deadline(s)
        ctx, stats = self._ctx(s, deadline), self._stats(s)
        note, outcome = self.doctor.referral_note(ctx)
        return {
            "agents_deadline": deadline,
            "referral": _checked(note, ctx, stats).model_dump(),
            "outcomes": [outcome.model_dump()],
            "citation_stats": stats.model_dump(),
        }

    def gate(self, s: GraphState) -> dict:
        # The gate follows the pharmacist (whose newest round holds the current
        # proposal) or the referral step (no proposal, no rounds).
        rounds = rounds_of(s)
        review = rounds[-1].review if rounds else None
        result = safety_gate(request_of(s), protocol_of(s), proposal_of(s), review, len(rounds), self.settings.max_rounds, referral_of(s))
        update: dict = {"gate": result.model_dump(exclude={"referral"})}
        if result.referral is not None:
            update["referral"] = result.referral.model_dump()
        return update

    def report(self, s: GraphState) -> dict:
        gate = gate_of(s)
        signoff = Signoff.model_validate(s["signoff"]) if s.get("signoff") else None
        status = "awaiting_signoff" if needs_signoff(gate.plan) and signoff is None else "final"
        audit = self._audit(s, gate)
        req = request_of(s)
        markdown, citations = render_report(
            assessment_id=s["assessment_id"], spec=req.spec, patient=req.patient, protocol=protocol_of(s),
            passages=self._passages(s), rounds=rounds_of(s),
            referral=referral_of(s), gate=gate, status=status, signoff=signoff, audit=audit,
            input_sources=s.get("input_sources"),
        )
        return {"status": status, "report_markdown": markdown, "citations": [c.model_dump() for c in citations], "audit": audit}

    def signoff(self, s: GraphState) -> dict:
        # Nothing before interrupt() may have side effects: the node re-runs from
        # its start when the graph resumes.
        # A refused payload asks again (a further interrupt, carrying the field errors) rather than
        # failing the run: a resume value that failed would be replayed by the next resume. On each
        # re-run the earlier interrupts return their recorded values, so the loop ends where it paused.
        # clinreason's Pipeline validates before resuming, so its payload passes the first time.
        gate = gate_of(s)
        req = request_of(s)
        ask = {"assessment_id": s["assessment_id"], "plan": gate.plan.model_dump(mode="json"),
               "allowed_options": protocol_of(s).allowed_options,
               "blocking_checks": [c.model_dump() for c in gate.plan.blocking_checks]}
        while True:
            payload = interrupt(ask)
            try:
                signoff = validate_signoff(payload, req, gate.plan)
                break
            except (InvalidSignoff, UnacknowledgedChecks) as refused:
                ask = {**ask, "errors": refused.field_errors()}
        plan = gate.plan
        if signoff.action == "amend" and signoff.agent:
            plan = treat_plan(req.evaluate(), signoff.agent, f"amended by prescriber {signoff.prescriber_id}", "prescriber")
        elif signoff.action == "reject":
            plan = Plan(action="rejected", reason=f"rejected by prescriber {signoff.prescriber_id}", decided_by="prescriber")
        return {"signoff": signoff.model_dump(), "gate": GateResult(passed=gate.passed, vetoes=gate.vetoes, plan=plan).model_dump()}

    # --- routing -----------------------------------------------------------------------
    @staticmethod
    def after_retrieve(s: GraphState) -> str:
        return "doctor" if request_of(s).spec.plan_kind(protocol_of(s)) == "treat" else "referral"

    def after_review(self, s: GraphState) -> str:
        review = last_review(s)
        if review is not None and review.verdict == "approve":
            return "gate"
        return "doctor" if len(s.get("rounds", [])) < self.settings.max_rounds else "gate"

    @staticmethod
    def after_report(s: GraphState) -> str:
        return "signoff" if s.get("status") == "awaiting_signoff" else "end"

    # --- audit -------------------------------------------------------------------------
    def _audit(self, s: GraphState, gate: GateResult) -> dict[str, Any]:
        p = protocol_of(s)
        req = request_of(s)
        outcomes = outcomes_of(s)
        backends = {"doctor": "rules", "pharmacist": "rules"}
        if self.settings.agent_backend == "llm":
            backends = {role: f"llm:{self.settings.llm_for(role)[0]}" for role in backends}
        return {
            "assessment_id": s["assessment_id"],
            "created_at": s.get("created_at", ""),
            "input_hash": req.input_hash,
            "protocol": f"{p.protocol_id} {p.protocol_version}",
            "profile": f"{p.profile_id} {p.profile_version}",
            "kb_version": current_kb_version((p.protocol_id, p.profile_id)),
            "formulary_version": req.spec.formulary.version,
            "retrieval_fingerprint": retrieval_fingerprint((p.protocol_id, p.profile_id)),
            "embedding_model": model_id(),
            "doctor": backends["doctor"],
            "pharmacist": backends["pharmacist"],
            **({"review_path": s.get("review_path", "sequential")} if self.settings.agent_backend == "llm" and s.get("rounds") else {}),
            "max_rounds": self.settings.max_rounds,
            "rounds": len(s.get("rounds") or []),
            "llm_fallbacks": [f"{o.fallback.agent} {o.fallback.step} round {o.fallback.round}: {o.fallback.reason}" for o in outcomes if o.fallback],
            "vetoes": gate.vetoes + [v for o in outcomes for v in o.violations],
            # What the agent boundary removed from answers it kept (instruction-like claims, claims past the caps).
            "agent_text_dropped": [d for o in outcomes for d in o.dropped],
            "citations": self._stats(s).model_dump(),
            "retrieved_chunks": len(s.get("evidence") or []),
            "clinreason_version": __version__,
        } | self._input_record(s)

    @staticmethod
    def _input_record(s: GraphState) -> dict[str, Any]:
        """How the input arrived, when it was not the protocol's own JSON (the mapping is in the report)."""
        sources = s.get("input_sources")
        if not sources:
            return {}
        return {"input_format": f"{sources['format']}: {len(sources['fields'])} fields mapped, {len(sources['ignored'])} resources not used"}
