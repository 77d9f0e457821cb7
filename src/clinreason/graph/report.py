"""Cited markdown report for clinicians.

Numbered references [n] are assigned in order of first use and resolve to
retrieved chunks (id, source, version). Text written by an agent is treated
as untrusted: control characters, HTML and bracketed citation look-alikes are
neutralised, and length is bounded, so an LLM cannot forge a reference or
inject markup. (LLM text is already capped and neutralised when it enters the
state, agents/guard.py; this is the second line, for every string rendered.)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from clinreason.agents.models import Claim, ReferralNote, Round
from clinreason.graph.safety import GateResult
from clinreason.hygiene import report_line as clean
from clinreason.knowledge.chunking import Chunk
from clinreason.knowledge.corpus import monograph_doc_id
from clinreason.protocols.plan import Signoff
from clinreason.protocols.result import ProtocolResult
from clinreason.protocols.spec import ProtocolSpec, scoped_id

PASSAGE_LINE = 4000  # characters of a rendered passage line (a monograph's counselling)
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


def _blocking_checks(gate: GateResult, signoff: Signoff | None, refs: _Refs, rule_chunk: str) -> list[str]:
    """First in the report: unrecognised entries the plan depends on (what is not recognised is not trusted)."""
    checks = gate.plan.blocking_checks
    if not checks:
        return []
    agent = gate.plan.option or ""
    L = ["## Blocking checks", f"The plan uses **{agent}**, which the formulary could not verify for this patient. "
         f"Check each entry by hand before approving {refs.mark([rule_chunk])}".rstrip() + "."]
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
    spec: ProtocolSpec,
    patient: Any,
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
    wording = spec.wording

    def rule_chunk(rule_id: str) -> str:
        return spec.rule_chunk_id(rule_id, protocol.profile_id)

    def mono(option: str, slug: str) -> str:
        return scoped_id(protocol.protocol_id, protocol.profile_id, f"{monograph_doc_id(option)}#{slug}")

    def docs(prefixes: tuple[str, ...]) -> list[str]:
        return [cid for cid, c in passages.items() if c.local_id.startswith(prefixes)]

    title = wording.report_title.format(profile=protocol.profile_id)
    L: list[str] = [f"# {title}", "", f"Assessment `{assessment_id}` | status **{status}**", ""]
    L += _blocking_checks(gate, signoff, refs, rule_chunk(spec.agent_policy.unverified_rule))
    L += ["## Patient summary", *spec.patient_summary(patient),
          "- Direct identifiers (name, health number, address) are not part of the input and do not appear here.", ""]

    L += ["## Decision", f"**{protocol.decision}**", ""]
    L += [f"- `{h.rule_id}` {h.title}: {clean(h.detail)} {refs.mark([rule_chunk(h.rule_id)])}".rstrip() for h in protocol.rules_fired]
    L.append("")

    plan = gate.plan
    L += ["## Plan"]
    if plan.action == "treat" and plan.regimen:
        dose = refs.mark([mono(plan.option or "", "dose-and-regimen")])
        L.append(f"**{plan.regimen.text}** {dose}".rstrip())
        if plan.regimen.note:
            L.append(f"_{plan.regimen.note}_")
    elif plan.action == "escalate":
        L.append("**Escalated to a human prescriber**: the pharmacist does not prescribe until a prescriber decides.")
    elif plan.action == "rejected":
        L.append(wording.rejected)
    else:
        L.append(f"**{'Refer' if plan.action == 'refer' else wording.no_treatment_label}**")
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
            L += ["", wording.avoid_heading] + [f"- {refs.claim(c)}" for c in referral.avoid_agents]
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

    if protocol.cautions:
        L += ["## Cautions"]
        L += [f"- **{clean(c.message)}** ({c.severity}) Action: {clean(c.action)} Evidence: {clean(c.evidence)}. "
              f"{refs.mark([rule_chunk(c.rule_id)])}".rstrip() for c in protocol.cautions]
        L.append("")

    if plan.action == "treat" and plan.option:
        counsel, adverse = mono(plan.option, "counselling"), mono(plan.option, "adverse-effects")
        # A knowledge-base passage is the project's own text: only an agent's lines get the short cap.
        text = clean(passages[counsel].text.splitlines()[0], PASSAGE_LINE) if counsel in passages else ""
        L += ["## Counselling", f"{text} {refs.mark([counsel])}".strip()]
        L += [f"Adverse effects to mention: see {refs.mark([adverse])}", ""]

    L += ["## Follow-up and red flags"]
    if protocol.follow_up:
        fu = protocol.follow_up
        L.append(f"- {wording.follow_up.format(reassess=fu.reassess)} {refs.mark(docs(wording.follow_up_docs))}".rstrip())
        L.append(f"- Escalate if: {', '.join(fu.escalate_if)}.")
        L.append(f"- Notify the primary prescriber: {'yes' if fu.notify_primary_prescriber else 'no'}.")
    L.append(f"- {wording.return_line} {refs.mark(docs(wording.return_docs))}".rstrip())
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

