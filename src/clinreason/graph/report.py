"""Cited markdown report for clinicians.

Numbered references [n] are assigned in order of first use and resolve to
retrieved chunks (id, source, version). Text written by an agent is treated
as untrusted: control characters, HTML and bracketed citation look-alikes are
neutralised, and length is bounded, so an LLM cannot forge a reference or
inject markup. (LLM text is already capped and neutralised when it enters the
state, agents/guard.py; this is the second line, for every string rendered.)
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from clinreason.agents.guard import MAX_CLAIM
from clinreason.agents.models import Claim, ReferralNote, Round
from clinreason.graph.safety import GateResult
from clinreason.knowledge.chunking import Chunk
from clinreason.knowledge.corpus import monograph_doc_id, rule_chunk_id
from clinreason.protocols.patient import Patient
from clinreason.protocols.result import ProtocolResult

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
URGENCY_LABEL = {
    "emergency_or_same_day": "same day (emergency department or urgent care if no same-day physician)",
    "within_24_48h": "physician or nurse practitioner within 24 to 48 hours",
    "routine": "routine",
    "none": "no referral needed",
}


class Citation(BaseModel):
    n: int
    chunk_id: str
    source: str
    title: str
    section: str
    version: str


class Signoff(BaseModel):
    action: str  # approve | amend | reject
    prescriber_id: str
    comment: str
    agent: str | None = None
    signed_at: str
    acknowledged: list[str] = []  # the blocking checks (unrecognised entries) the prescriber acknowledged


def clean(text: str) -> str:
    """Untrusted text -> one safe markdown line."""
    text = _CONTROL.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("[", "(").replace("]", ")")  # no forged [n] or links
    text = re.sub(r"^#+\s*", "", text)
    return text if len(text) <= MAX_CLAIM else text[: MAX_CLAIM - 1] + "…"


class _Refs:
    def __init__(self, passages: dict[str, Chunk]):
        self.passages = passages
        self.order: dict[str, int] = {}

    def mark(self, ids: list[str]) -> str:
        nums = []
        for cid in ids:
            if cid not in self.passages:
                continue  # only checked, retrieved chunks are ever numbered
            nums.append(self.order.setdefault(cid, len(self.order) + 1))
        return "".join(f"[{n}]" for n in sorted(set(nums)))

    def claim(self, c: Claim) -> str:
        marks = self.mark(c.citations)
        return f"{clean(c.text)}{' ' + marks if marks else ''}"

    def citations(self) -> list[Citation]:
        out = []
        for cid, n in sorted(self.order.items(), key=lambda kv: kv[1]):
            ch = self.passages[cid]
            out.append(Citation(n=n, chunk_id=cid, source=ch.source, title=ch.title, section=ch.section, version=ch.version))
        return out


def _patient_summary(p: Patient) -> list[str]:
    s, rf, h = p.symptoms, p.red_flags, p.history
    present = [k.replace("_", " ") for k, v in s.model_dump().items() if v] or ["none"]
    flags = [k.replace("_", " ") for k, v in rf.model_dump().items() if v] or ["none"]
    renal = p.renal_function_summary.value + "".join(f", {label} {v:g} mL/min" for label, v in p.renal_values())
    return [
        f"- Age {p.age}, sex {p.sex.value}, pregnancy status {p.pregnancy_status.value}, renal function {renal}",
        f"- Symptoms: {', '.join(present)}",
        f"- Red flags: {', '.join(flags)}",
        f"- Medications: {', '.join(clean(m) for m in h.meds) or 'none'}",
        f"- Allergies: {', '.join(clean(a) for a in h.allergies) or 'none reported'}",
        f"- Antibiotics in the last 90 days: {'yes' if h.antibiotics_last_90d else 'no'}"
        + (f" ({', '.join(clean(x) for x in h.recent_antibiotics)})" if h.recent_antibiotics else ""),
        "- Direct identifiers (name, health number, address) are not part of the input and do not appear here.",
    ]


def _blocking_checks(gate: GateResult, signoff: Signoff | None, refs: _Refs, profile_id: str) -> list[str]:
    """First in the report: unrecognised entries the plan depends on (what is not recognised is not trusted)."""
    checks = gate.plan.blocking_checks
    if not checks:
        return []
    agent = gate.plan.agent or ""
    L = ["## Blocking checks", f"The plan uses **{agent}**, which the formulary could not verify for this patient. "
         f"Check each entry by hand before approving {refs.mark([rule_chunk_id('TX-UNVERIFIED', profile_id)])}".rstrip() + "."]
    L += [f"- `{c.field}` {clean(repr(c.entry))}: {clean(c.reason)}." for c in checks]
    if signoff is not None and signoff.acknowledged:
        L.append(f"- Acknowledged by prescriber {clean(signoff.prescriber_id)}: {', '.join(clean(repr(a)) for a in signoff.acknowledged)}.")
    else:
        L.append("- Sign-off approval is refused until the prescriber acknowledges each entry "
                 "(`clinreason signoff ID --action approve --prescriber ID --acknowledge ENTRY`, or `acknowledged` in the API body).")
    return [*L, ""]


def render_report(
    *,
    assessment_id: str,
    patient: Patient,
    protocol: ProtocolResult,
    passages: dict[str, Chunk],
    rounds: list[Round],
    referral: ReferralNote | None,
    gate: GateResult,
    status: str,
    signoff: Signoff | None,
    audit: dict[str, Any],
) -> tuple[str, list[Citation]]:
    refs = _Refs(passages)
    L: list[str] = [f"# Cystitis assessment ({protocol.profile_id})", "", f"Assessment `{assessment_id}` | status **{status}**", ""]
    L += _blocking_checks(gate, signoff, refs, protocol.profile_id)
    L += ["## Patient summary", *_patient_summary(patient), ""]

    L += ["## Decision", f"**{protocol.decision.value}**", ""]
    L += [f"- `{h.rule_id}` {h.title}: {clean(h.detail)} {refs.mark([rule_chunk_id(h.rule_id, protocol.profile_id)])}".rstrip() for h in protocol.rules_fired]
    L.append("")

    plan = gate.plan
    L += ["## Plan"]
    if plan.action == "treat" and plan.regimen:
        dose = refs.mark([f"{monograph_doc_id(plan.agent or '')}#dose-and-regimen"])
        L.append(f"**{plan.regimen.text}** {dose}".rstrip())
        if plan.regimen.note:
            L.append(f"_{plan.regimen.note}_")
    elif plan.action == "escalate":
        L.append("**Escalated to a human prescriber**: the pharmacist does not prescribe until a prescriber decides.")
    elif plan.action == "rejected":
        L.append("**Rejected by the prescriber**: no antibiotic is dispensed under this assessment.")
    else:
        L.append(f"**{'Refer' if plan.action == 'refer' else 'No antibiotic'}**")
    L += [f"Decided by: {plan.decided_by} ({clean(plan.reason)}).", ""]
    L += ["### Safety gate", "Passed: the final plan is one the protocol allows for this patient." if gate.passed else "**Vetoed:**"]
    L += [f"- {clean(v)}" for v in gate.vetoes]
    # What the agent boundary vetoed or removed is shown here too, not only in the audit record:
    # a clinician should see that a model tried to step outside the protocol.
    boundary = audit.get("vetoes", [])[len(gate.vetoes):]  # audit vetoes = gate vetoes + agent-boundary vetoes
    if boundary:
        L += ["", "Vetoed at the agent boundary (the rules backend answered instead):", *(f"- {clean(v)}" for v in boundary)]
    if dropped := audit.get("agent_text_dropped"):
        L += ["", "Removed from agent answers:", *(f"- {clean(d)}" for d in dropped)]
    L.append("")

    if referral is not None:
        L += ["## Referral note", f"Urgency: **{URGENCY_LABEL[referral.urgency]}**", "", "Reasons:"]
        L += [f"- {refs.claim(c)}" for c in referral.reasons]
        L += ["", "What to tell the patient:"] + [f"- {refs.claim(c)}" for c in referral.patient_advice]
        if referral.avoid_agents:
            L += ["", "Agents to avoid if a physician treats:"] + [f"- {refs.claim(c)}" for c in referral.avoid_agents]
        L.append("")

    if rounds:
        last = rounds[-1].review
        L += ["## Pharmacist review", f"Final verdict: **{last.verdict}**. {refs.claim(last.summary)}"]
        L += [f"- {c.category} ({c.agent}{', ' + c.rule_id if c.rule_id else ''}): {refs.claim(c.claim)}" for c in last.concerns]
        L += ["", "## Deliberation"]
        for r in rounds:
            prop = r.proposal
            L.append(f"**Round {r.number}** (doctor: {r.doctor_backend}; pharmacist: {r.pharmacist_backend})")
            L.append(f"- Doctor proposes: {prop.action}{' ' + prop.agent if prop.agent else ''}")
            L += [f"  - {refs.claim(c)}" for c in prop.rationale]
            L.append(f"- Pharmacist: {r.review.verdict}" + (f", suggests {r.review.suggested_agent}" if r.review.suggested_agent else ""))
            L += [f"  - {refs.claim(c.claim)}" for c in r.review.concerns]
        L.append("")

    if plan.action == "treat" and plan.agent:
        mono = monograph_doc_id(plan.agent)
        L += ["## Counselling", f"{clean(passages[mono + '#counselling'].text.splitlines()[0]) if mono + '#counselling' in passages else ''} {refs.mark([mono + '#counselling'])}".strip()]
        L += [f"Adverse effects to mention: see {refs.mark([mono + '#adverse-effects'])}", ""]

    L += ["## Follow-up and red flags"]
    if protocol.follow_up:
        fu = protocol.follow_up
        follow = [cid for cid in passages if cid.startswith("policy-signoff#follow-up")]
        L.append(f"- Reassess at {fu.reassess}. {refs.mark(follow)}".rstrip())
        L.append(f"- Escalate if: {', '.join(fu.escalate_if)}.")
        L.append(f"- Notify the primary prescriber: {'yes' if fu.notify_primary_prescriber else 'no'}.")
    back = [cid for cid in passages if cid.startswith("policy-counselling#when-to-return")]
    L.append(f"- Return at once for fever, rigors, flank or back pain, vomiting, or feeling very unwell. {refs.mark(back)}".rstrip())
    for f in protocol.flags:
        L.append(f"- Check: {clean(f.message)}")
    L.append("")

    L += ["## Prescriber sign-off"]
    if signoff is not None:
        agent = f" (agent: {signoff.agent})" if signoff.agent else ""
        L += [f"- Action: **{signoff.action}**{agent}", f"- Prescriber: {clean(signoff.prescriber_id)}", f"- Signed: {signoff.signed_at}", f"- Comment: {clean(signoff.comment) or '-'}"]
        if signoff.acknowledged:
            L.append(f"- Blocking checks acknowledged: {', '.join(clean(repr(a)) for a in signoff.acknowledged)}")
    elif status == "awaiting_signoff":
        L += ["- Awaiting sign-off: approve, amend or reject. The plan is not final until a prescriber signs.", "- Prescriber: ____________________   Date: __________"]
    else:
        L.append("- Not required for this decision (no prescription).")
    L.append("")

    citations = refs.citations()
    L += ["## References"]
    L += [f"[{c.n}] `{c.chunk_id}`: {c.title}, {c.section}. Source: {c.source}. Version {c.version}." for c in citations]
    L += ["", "## Audit record"]
    L += [f"- {k}: {v}" for k, v in audit.items()]
    return "\n".join(L) + "\n", citations

