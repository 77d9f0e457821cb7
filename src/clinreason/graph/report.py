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

from clinreason.agents.models import Claim, ReferralNote, Round
from clinreason.graph.safety import GateResult
from clinreason.hygiene import report_line as clean
from clinreason.knowledge.chunking import Chunk
from clinreason.knowledge.corpus import monograph_doc_id, slugify
from clinreason.protocols import plain as plain_words
from clinreason.protocols.actions import plan_actions
from clinreason.protocols.plan import Signoff
from clinreason.protocols.result import ProtocolResult
from clinreason.protocols.spec import ProtocolSpec, scoped_id

PASSAGE_LINE = 4000  # characters of a rendered passage line (a monograph's counselling)


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


def _blocking_checks(gate: GateResult, signoff: Signoff | None, refs: _Refs, rule_chunk: str, spec: ProtocolSpec) -> list[str]:
    """On the first screen: unrecognised entries the plan depends on (what is not recognised is not trusted)."""
    checks = gate.plan.blocking_checks
    if not checks:
        return []
    name = spec.option_name(gate.plan.option or "")
    L = [f"**Blocking checks:** the plan uses {name}, which the formulary could not verify for this patient. "
         f"Check each entry by hand before approving {refs.mark([rule_chunk])}".rstrip() + "."]
    L += [f"- {clean(repr(c.entry))}: {clean(c.reason)}." for c in checks]
    if signoff is not None and signoff.acknowledged:
        L.append(f"- Acknowledged by prescriber {clean(signoff.prescriber_id)}: {', '.join(clean(repr(a)) for a in signoff.acknowledged)}.")
    else:
        L.append("- Approval is refused until the prescriber acknowledges each entry at sign-off.")
    return L


def _section_label(section: str, doc_title: str) -> str:
    """A passage's heading without what its document line already shows: the drug's name under its
    monograph ("<Drug>: dose and regimen" -> "dose and regimen"; "<Drug> interaction: X" -> "interaction: X")."""
    head, sep, rest = section.partition(": ")
    name = doc_title.removesuffix(" monograph")
    if sep and head.lower().startswith(name.lower()):
        more = head[len(name):].strip()
        return f"{more}: {rest}" if more else rest
    return section


def _passage_source(chunk: Chunk) -> str | None:
    """The source a passage names for itself (its "Source:" line), narrower than its document's."""
    lines = [ln for ln in chunk.text.splitlines() if ln.startswith("Source: ")]
    return lines[-1].removeprefix("Source: ").strip().rstrip(".") if lines else None


def _references(citations: list[Citation], passages: dict[str, Chunk]) -> list[str]:
    """One entry per document: its title, version and the sources of the passages cited from it (each
    once; the document's own source line when a passage names none), then those passages. A passage's
    full id is `<knowledge base>/<document>#<section>`; the knowledge base is said once."""
    docs: dict[str, list[Citation]] = {}
    for c in citations:
        docs.setdefault(c.chunk_id.split("#", 1)[0], []).append(c)
    bases = {doc.rsplit("/", 1)[0] for doc in docs}
    one_base = len(bases) == 1
    L = ["## References"]
    if one_base:
        L.append(f"Knowledge base `{next(iter(bases))}`; a passage's id is `document#heading-slug`.")
    for doc, cites in docs.items():
        chunks = [passages[c.chunk_id] for c in cites]
        first = chunks[0]
        own = [_passage_source(ch) or ch.source.rstrip(".") for ch in chunks]
        shared = len(set(own)) == 1  # one source for all: on the document's line, else on each passage's
        name = doc.rsplit("/", 1)[-1] if one_base else doc
        L += ["", f"**{clean(first.title)}** (`{name}`, version {clean(first.version)})." + (f" Source: {clean(own[0])}." if shared else "")]
        for c, source in zip(cites, own, strict=True):
            label, anchor = _section_label(c.section, first.title), c.chunk_id.split("#", 1)[1]
            rule = c.section.split(": ", 1)[0]
            if rule.isupper():  # a rule passage: its id is the rule's
                label = c.section
            # The section id is the heading's slug unless the heading changed after it was first cited.
            shown = "" if anchor in (slugify(label), slugify(label.split(": ", 1)[-1]), slugify(rule)) else f" (`#{anchor}`)"
            L.append(f"- [{c.n}] {clean(label)}{shown}" + ("" if shared else f". Source: {clean(source)}."))
    return L


def _counselling(passages: dict[str, Chunk], counsel: str, adverse: str, refs: _Refs) -> list[str]:
    """The monograph's counselling and adverse effects, as text the pharmacist says to the patient."""
    def body(cid: str) -> str:
        lines = [ln for ln in passages[cid].text.splitlines() if ln.strip() and not ln.startswith("Source:")]
        text = " ".join(lines)
        # "Counselling for <drug>: ..." / "Adverse effects of <drug>: ...": the heading says it already.
        return text.split(": ", 1)[1] if ": " in text[:80] else text

    L = []
    if counsel in passages:
        L.append(f"{clean(body(counsel), PASSAGE_LINE)} {refs.mark([counsel])}".rstrip())
    if adverse in passages:
        L += ["", f"Adverse effects to mention: {clean(plain_words.sentence(body(adverse)), PASSAGE_LINE)} {refs.mark([adverse])}".rstrip()]
    return L


def _audit(audit: dict[str, Any]) -> list[str]:
    def value(v: Any) -> str:
        if isinstance(v, list):
            return "; ".join(clean(str(x)) for x in v) or "none"
        if isinstance(v, dict):
            return ", ".join(f"{k.replace('_', ' ')} {x}" for k, x in v.items())
        return clean(str(v))

    return ["## Audit record", *(f"- {k.replace('_', ' ').capitalize()}: {value(v)}" for k, v in audit.items())]


_ENTRY = re.compile(r"\[(\d+)\]")


def _input_sources(sources: dict[str, Any] | None) -> list[str]:
    """Where each input field came from, for an input mapped from another format (FHIR)."""
    if not sources:
        return []
    L = [f"### Where the input came from ({clean(sources['format'])})"]
    # "history.meds[0]" reads "history.meds 1": report lines carry no brackets (hygiene.report_line)
    L += [f"- {clean(_ENTRY.sub(lambda m: f' {int(m.group(1)) + 1}', f['field']))}: {clean(f['source'])}" for f in sources["fields"]]
    if sources["ignored"]:
        L += ["", "Not used:", *(f"- {clean(i['resource'])}: {clean(i['reason'])}" for i in sources["ignored"])]
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
    input_sources: dict[str, Any] | None = None,
) -> tuple[str, list[Citation]]:
    """The report: a first screen (decision, plan, actions, excluded options, checks, sign-off), then the detail."""
    refs = _Refs(passages)
    wording = spec.wording
    labels = wording.field_labels
    plan = gate.plan
    decision = spec.decision(protocol.decision)

    def rule_chunk(rule_id: str) -> str:
        return spec.rule_chunk_id(rule_id, protocol.profile_id)

    def mono(option: str, slug: str) -> str:
        return scoped_id(protocol.protocol_id, protocol.profile_id, f"{monograph_doc_id(option)}#{slug}")

    def docs(prefixes: tuple[str, ...]) -> list[str]:
        return [cid for cid, c in passages.items() if c.local_id.startswith(prefixes)]

    names = {ev.option: spec.option_name(ev.option) for ev in protocol.options}

    def plain(text: str) -> str:
        return clean(plain_words.detail(text, labels, names))

    title = wording.report_title.format(profile=protocol.profile_id)
    L: list[str] = [f"# {title}", "", f"Assessment `{assessment_id}`, {plain_words.STATUS.get(status, status)}.", ""]

    # --- first screen -------------------------------------------------------------------
    L += ["## Summary", f"**Decision:** {clean(plain_words.sentence(decision.meaning))}"]
    option = plan.option if plan.action == "treat" else None
    if plan.action == "treat" and plan.regimen:
        L.append(f"**Plan:** {clean(plain_words.sentence(plain_words.regimen(plan.regimen)))} {refs.mark([mono(plan.option or '', 'dose-and-regimen')])}".rstrip())
    elif plan.action == "escalate":
        L.append("**Plan:** escalated to a human prescriber: the pharmacist does not prescribe until a prescriber decides.")
    elif plan.action == "rejected":
        L.append(f"**Plan:** {wording.rejected.replace('**', '')}")
    elif plan.action == "refer":
        urgency = referral.urgency if referral is not None else spec.referral_urgency(protocol)
        L.append(f"**Plan:** refer {plain_words.URGENCY[urgency]}. {wording.no_treatment_label} is started at the pharmacy.")
    else:
        L.append(f"**Plan:** {wording.no_treatment_label.lower()} now; advice below.")
    actions = plan_actions(protocol, option, wording.follow_up)
    if actions:
        L += ["", "**Actions:**"]
        for i, act in enumerate(actions, 1):
            lead = "**Major caution.** " if act.severity == "major" else ""
            mark = refs.mark([rule_chunk(act.rule_id)]) if act.rule_id else ""
            L.append(f"{i}. {lead}{clean(act.text)} {mark}".rstrip())
    excluded = [ev for ev in protocol.options if ev.exclusions]
    passed_over = [ev for ev in protocol.options if ev.allowed and ev.option not in protocol.selectable_options]
    if excluded or passed_over:
        L += ["", "**Options not used:**"]
        for ev in excluded:
            why = "; ".join(f"{clean(plain_words.first_sentence(x.reason).rstrip('.'))} ({plain(x.evidence)})" for x in ev.exclusions)
            marks = refs.mark([rule_chunk(x.rule_id) for x in ev.exclusions])
            L.append(f"- {spec.option_name(ev.option)}: {why}. {marks}".rstrip())
        for ev in passed_over:
            entries = ", ".join(clean(repr(e.entry)) for e in protocol.checks_for(ev.option))
            L.append(f"- {spec.option_name(ev.option)}: cannot be verified ({entries} not recognised) while a verified option remains. "
                     f"{refs.mark([rule_chunk(spec.agent_policy.unverified_rule)])}".rstrip())
    blocking = _blocking_checks(gate, signoff, refs, rule_chunk(spec.agent_policy.unverified_rule), spec)
    if blocking or protocol.flags:
        L += ["", *blocking]
        if protocol.flags:
            L += ["**Check before signing:**", *(f"- {plain(f.message)}" for f in protocol.flags)]
    if signoff is not None:
        L += ["", f"**Sign-off:** {signoff.action} by prescriber {clean(signoff.prescriber_id)} on {signoff.signed_at}."]
    elif status == "awaiting_signoff":
        L += ["", "**Sign-off:** required. The plan is not final until a prescriber approves, amends or rejects it."]
    L.append("")

    # --- detail ---------------------------------------------------------------------------
    L += ["## Patient", *spec.patient_summary(patient),
          "- Direct identifiers (name, health number, address) are not part of the input and do not appear here.", ""]
    L += _input_sources(input_sources)
    L += ["## Why this decision"]
    for h in protocol.rules_fired:
        said = plain(h.detail)
        said = "" if plain_words.restates(said, h.title) else f": {said}"
        L.append(f"- {clean(h.title)}{said} {refs.mark([rule_chunk(h.rule_id)])}".rstrip())
    L.append("")

    L += ["## Plan"]
    if plan.action == "treat" and plan.regimen:
        L.append(f"{clean(plain_words.sentence(plain_words.regimen(plan.regimen)))}")
        if plan.regimen.note:
            L.append(f"_{clean(plain_words.sentence(plan.regimen.note))}_")
    if plan.decided_by == "protocol" and plan.action in ("refer", "no_treatment"):
        L.append("Decided by the protocol: no agent can change a referral or a decision not to treat.")
    else:
        L.append(f"Decided by {'the ' if plan.decided_by != 'agents' else ''}{plan.decided_by}: {plain(plan.reason)}.")
    L += ["", "### Safety gate", "Passed: the final plan is one the protocol allows for this patient." if gate.passed else "**Vetoed:**"]
    L += [f"- {clean(v)}" for v in gate.vetoes]
    # What the agent boundary vetoed or removed is shown here too, not only in the audit record:
    # a clinician should see that a model tried to step outside the protocol.
    boundary = audit.get("vetoes", [])[len(gate.vetoes):]  # audit vetoes = gate vetoes + agent-boundary vetoes
    if boundary:
        L += ["", "Vetoed at the agent boundary (the rules backend answered instead):", *(f"- {clean(v)}" for v in boundary)]
    if dropped := audit.get("agent_text_dropped"):
        L += ["", "Removed from agent answers:", *(f"- {clean(d)}" for d in dropped)]
    L.append("")

    cautions = [c for c in protocol.cautions if c.option in (option, None) and c.severity != "counsel"]
    if cautions:
        L += ["## Medication review"]
        L += [f"- **{clean(c.message)}** ({c.severity}). {clean(plain_words.sentence(c.action))} Found in: {plain(c.evidence)}. "
              f"{refs.mark([rule_chunk(c.rule_id)])}".rstrip() for c in cautions]
        L.append("")

    if plan.action == "treat" and plan.option:
        L += [f"## Counselling ({spec.option_name(plan.option)})",
              *_counselling(passages, mono(plan.option, "counselling"), mono(plan.option, "adverse-effects"), refs)]
        L.append("")

    if referral is not None:
        if plan.action == "refer":
            L += ["## Referral", f"Refer {plain_words.URGENCY[referral.urgency]}.", "", "Reasons:"]
            L += [f"- {refs.claim(c)}" for c in referral.reasons]
            L += ["", "What to tell the patient:"] + [f"- {refs.claim(c)}" for c in referral.patient_advice]
            if referral.avoid_agents:
                L += ["", wording.avoid_heading] + [f"- {refs.claim(c)}" for c in referral.avoid_agents]
        else:
            L += ["## Advice", "No referral is needed.", "", "What to tell the patient:"]
            L += [f"- {refs.claim(c)}" for c in referral.patient_advice]
        L.append("")

    if rounds:
        last = rounds[-1].review
        L += ["## Pharmacist review", f"Final verdict: **{last.verdict}**. {refs.claim(last.summary)}"]
        L += [f"- {refs.claim(c.claim)}" for c in last.concerns]
        L += ["", "## Deliberation"]
        for r in rounds:
            prop = r.proposal
            who = f"doctor: {r.doctor_backend}; pharmacist: {r.pharmacist_backend}"
            proposed = f"treat with {spec.option_name(prop.agent)}" if prop.action == "treat" and prop.agent else "escalate to a prescriber"
            L.append(f"**Round {r.number}** ({who})")
            L.append(f"- Doctor proposes: {proposed}")
            L += [f"  - {refs.claim(c)}" for c in prop.rationale]
            suggestion = f", suggests {spec.option_name(r.review.suggested_agent)}" if r.review.suggested_agent else ""
            final = r is rounds[-1]
            L.append(f"- Pharmacist: {r.review.verdict}{suggestion}" + (" (concerns as in the review above)" if final and r.review.concerns else ""))
            if not final:
                L += [f"  - {refs.claim(c.claim)}" for c in r.review.concerns]
        L.append("")

    if plan.action != "refer":  # a referral's advice already says where to go and how soon
        L += ["## Follow-up and red flags"]
        if protocol.follow_up and plan.action == "treat":
            fu = protocol.follow_up
            L.append(f"- {wording.follow_up.format(reassess=fu.reassess)} {refs.mark(docs(wording.follow_up_docs))}".rstrip())
            L.append(f"- Escalate if: {', '.join(fu.escalate_if)}.")
            if fu.notify_primary_prescriber:
                L.append("- Notify the patient's primary care provider of the prescription (the notification document).")
        L += [f"- {wording.return_line} {refs.mark(docs(wording.return_docs))}".rstrip(), ""]

    L += ["## Prescriber sign-off"]
    if signoff is not None:
        chosen = f" ({spec.option_name(signoff.agent)})" if signoff.agent else ""
        L += [f"- Action: **{signoff.action}**{chosen}", f"- Prescriber: {clean(signoff.prescriber_id)}", f"- Signed: {signoff.signed_at}",
              f"- Comment: {clean(signoff.comment) or 'none'}"]
        if signoff.acknowledged:
            L.append(f"- Blocking checks acknowledged: {', '.join(clean(repr(a)) for a in signoff.acknowledged)}")
    elif status == "awaiting_signoff":
        L += ["- Awaiting sign-off: approve, amend or reject. The plan is not final until a prescriber signs.",
              "- Prescriber: ____________________   Date: __________"]
    else:
        L.append("- Not required for this decision (no prescription).")
    L.append("")

    citations = refs.citations()
    L += [*_references(citations, passages), "", *_audit(audit)]
    return "\n".join(L) + "\n", citations
