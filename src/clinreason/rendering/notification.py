"""The notification to the patient's primary care provider, built from a stored assessment.

A pharmacist who prescribes tells the patient's primary care provider (family physician or nurse
practitioner) what was prescribed, why, and the follow-up; a referral or advice not to treat is
worth the same note. This module writes that note as Markdown from the stored record alone (and
the patient's age and sex from the checkpoint, when there is one): the same text then becomes
HTML and PDF through html.py and pdf.py.

Every condition-specific word comes from the assessment's protocol spec (its title, the decision
table's meaning, its report wording, its option names); the rules that fired are named by their
titles, never by rule ids or input field names. clinreason holds no direct identifiers, so the
patient's name, date of birth and health number are blank lines the pharmacy completes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from clinreason.assessment import Assessment
from clinreason.protocols.actions import (
    NOTIFY_PRIMARY_CARE,
    REASSESS,
    Action,
    plan_actions,
)
from clinreason.protocols.plain import first_sentence
from clinreason.protocols.registry import get_spec
from clinreason.protocols.result import Regimen
from clinreason.protocols.spec import ProtocolSpec

TITLE = "Notification to the primary care provider"
BLANK = "______________________"  # a line to fill in by hand
SHORT = "______________"
URGENCY_WORDS = {
    "emergency_or_same_day": "the same day (an emergency department or urgent care if no physician can see them today)",
    "within_24_48h": "by a physician or nurse practitioner within 24 to 48 hours",
    "routine": "at a routine appointment",
    "none": "no referral",
}
ROUTE_WORDS = {"po": "by mouth", "oral": "by mouth", "iv": "intravenously", "im": "intramuscularly", "sc": "subcutaneously",
               "top": "topically", "pv": "vaginally"}
FREQUENCY_WORDS = {"qd": "once daily", "od": "once daily", "daily": "once daily", "bid": "twice daily", "tid": "three times daily",
                   "qid": "four times daily", "qhs": "at bedtime", "once": "once"}
SEVERITY_WORDS = {"major": "Major", "moderate": "Moderate", "minor": "Minor"}
STATUS_WORDS = {"awaiting_signoff": "awaiting sign-off", "final": "final"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<])")
_ENTITY = re.compile(r"&(?=#?\w+;)")


def text(value: Any) -> str:
    """Plain text as Markdown that shows exactly that text: one line, Markdown's own marks escaped."""
    s = " ".join(_CONTROL.sub(" ", str(value)).split())
    return _ENTITY.sub(r"\\&", _MD_SPECIAL.sub(r"\\\1", s))


def sentence(value: Any) -> str:
    """`text`, with a capital first letter and a full stop."""
    s = text(value).rstrip()
    if not s:
        return s
    s = s[0].upper() + s[1:]
    return s if s.endswith((".", "!", "?", ":")) else s + "."


def status_words(status: str | None) -> str:
    return STATUS_WORDS.get(status or "", (status or "").replace("_", " "))


def route_words(route: str) -> str:
    return ROUTE_WORDS.get(route.strip().lower(), route)


def frequency_words(frequency: str) -> str:
    return FREQUENCY_WORDS.get(frequency.strip().lower(), frequency)


def regimen_words(r: Regimen) -> str:
    """`drug dose route frequency for duration` in words ("by mouth twice daily for 5 days")."""
    parts = [r.drug, r.dose, route_words(r.route)]
    if r.frequency.strip().lower() == "once" and "single" in r.duration.lower():
        parts.append("as a single dose")
    else:
        parts.append(frequency_words(r.frequency))
        parts.append(f"for {r.duration}" if r.duration[:1].isdigit() else r.duration)
    return " ".join(p for p in parts if p)


def _date(iso: str | None) -> str:
    return (iso or "")[:10]


def _words(value: Any) -> str:
    return str(value).replace("_", " ")


def patient_lines(patient: Mapping[str, Any] | None) -> list[str]:
    """Age, sex and what else a prescriber weighs (pregnancy, breastfeeding, weight), when known."""
    if not patient:
        return [f"- Age: {SHORT}   Sex: {SHORT}"]
    age, sex = patient.get("age"), patient.get("sex")
    parts = [f"Age {text(age) if age is not None else SHORT}", f"sex {text(_words(sex)) if sex else SHORT}"]
    if patient.get("pregnancy_status") not in (None, ""):
        parts.append(f"pregnancy status {text(_words(patient['pregnancy_status']))}")
    if patient.get("breastfeeding") is not None:
        parts.append(f"breastfeeding {'yes' if patient['breastfeeding'] else 'no'}")
    if patient.get("weight_kg") is not None:
        parts.append(f"weight {text(patient['weight_kg'])} kg")
    return ["- " + ", ".join(parts) + "."]


def _signer(a: Assessment) -> str | None:
    return a.signoff.prescriber_id if a.signoff is not None and a.signoff.prescriber_id else None


def _site(a: Assessment) -> str | None:
    return ((a.audit or {}).get("submitted_by") or {}).get("site")


def _cautions(a: Assessment, actions: list[Action]) -> tuple[list[str], list[str]]:
    """(cautions with their actions, counselling given) for the notification, in plain words."""
    messages = {c.rule_id: c.message for c in a.protocol.cautions}
    cautions, counsel = [], []
    for act in actions:
        if NOTIFY_PRIMARY_CARE in act.codes or REASSESS in act.codes:
            continue  # this document is the notification; the follow-up has its own section
        if act.severity == "counsel":
            counsel.append(f"- {sentence(act.text)}")
            continue
        label = SEVERITY_WORDS.get(act.severity or "", "")
        what = messages.get(act.rule_id or "")
        head = f"**{label}**: " if label else ""
        cautions.append(f"- {head}{sentence(what) + ' ' if what else ''}{sentence(act.text)}")
    return cautions, counsel


def _not_used(spec: ProtocolSpec, a: Assessment) -> list[str]:
    """The protocol's options that this patient could not have, with the reasons; options excluded
    for the same reasons share a line."""
    by_reason: dict[str, list[str]] = {}
    for ev in a.protocol.options:
        if ev.exclusions:
            # The first sentence: the rule's advice after it can name options this patient cannot have either.
            reasons = "; ".join(dict.fromkeys(text(first_sentence(x.reason)).rstrip(".") for x in ev.exclusions))
            name = spec.option_name(ev.option) if ev.option in spec.formulary.options else ev.option
            by_reason.setdefault(reasons, []).append(text(name))
    return [f"- {', '.join(names)}: {reasons}." for reasons, names in by_reason.items()]


def notification_markdown(a: Assessment, patient: Mapping[str, Any] | None = None) -> str:
    """The notification of one stored assessment, as Markdown. `patient` is the patient's input
    (for age and sex; None: blank lines)."""
    spec = get_spec(a.protocol.protocol_id)
    result = a.protocol
    decision = spec.decisions.get(result.decision)
    plan = a.plan
    action = plan.action if plan is not None else ("treat" if a.recommendation else "refer")
    regimen = (plan.regimen if plan is not None else a.recommendation) if action == "treat" else None
    option = regimen.agent if regimen is not None else None
    draft = a.status == "awaiting_signoff"
    when = _date(a.signoff.signed_at if a.signoff is not None and a.signoff.signed_at else (a.audit or {}).get("created_at"))
    profile = spec.profiles.get(result.profile_id)

    L = [f"# {TITLE}", ""]
    if draft:
        L += ["**DRAFT: not signed.** The plan awaits prescriber sign-off; do not send this notification until it is signed.", ""]
    under = f" ({text(profile.title)})" if profile is not None else ""
    L += [f"**Re:** pharmacist assessment, {text(spec.title)}{under}.",
          f"Date: {text(when) or BLANK}. Assessment {text(a.id or '')} ({status_words(a.status)}).", ""]

    signer, site = _signer(a), _site(a)
    L += ["## To and from",
          f"- To: {BLANK}, primary care provider (family physician or nurse practitioner); fax {SHORT}",
          f"- From: {text(signer) if signer else BLANK}, pharmacist or prescriber; pharmacy {text(site) if site else BLANK}; "
          f"telephone and fax {SHORT}", ""]

    L += ["## Patient",
          "- Name / Date of birth / Health number: to be completed by the pharmacy (clinreason holds no direct identifiers).",
          f"- Name: {BLANK}   Date of birth: {SHORT}   Health number: {SHORT}"]
    L += patient_lines(patient)
    meds = ", ".join(text(m.text) for m in result.medications) or "none reported"
    allergies = ", ".join(text(m.text) for m in result.allergies) or "none reported"
    L += [f"- Medications reviewed: {meds}. Allergies: {allergies}.", ""]

    if regimen is not None:
        cells = [regimen.drug, regimen.dose, route_words(regimen.route), frequency_words(regimen.frequency), regimen.duration]
        L += ["## What was prescribed", f"**{sentence(regimen_words(regimen))}**", "",
              "| Drug | Dose | Route | Frequency | Duration |", "|---|---|---|---|---|",
              "| " + " | ".join(text(c).replace("|", "\\|") for c in cells) + " |", ""]
        if regimen.note:
            L += [f"Note: {sentence(regimen.note)}", ""]
    else:
        L += ["## What was advised", "- Nothing was prescribed under this assessment."]
        if action == "rejected":
            L.append("- The prescriber rejected the proposed plan; the patient is directed to other care.")
        elif action == "escalate":
            L.append("- The case was escalated to a prescriber, who decides before anything is prescribed.")
        elif action == "refer":
            urgency = a.referral.urgency if a.referral is not None else spec.referral_urgency(result)
            L.append(f"- Referred: the patient was advised to be seen {URGENCY_WORDS.get(urgency, _words(urgency))}.")
        elif decision is not None:
            L.append(f"- {sentence(spec.wording.no_treatment_label)}")
        L.append("")

    L += ["## Why", f"- Outcome of the assessment: {sentence(decision.meaning if decision else _words(result.decision))}"]
    findings = list(dict.fromkeys(h.title for h in result.rules_fired))
    if findings:
        L += ["- Findings:"] + [f"  - {sentence(t)}" for t in findings]
    checks = [c.entry for c in (plan.blocking_checks if plan is not None else [])]
    if checks:
        done = a.signoff is not None and a.signoff.acknowledged
        L.append(f"- Not recognised by the drug database, so checked by hand {'by the prescriber at sign-off' if done else 'before sign-off'}: "
                 f"{', '.join(text(e) for e in checks)}.")
    not_used = _not_used(spec, a)
    if not_used:
        L += ["", "Options the protocol could not use for this patient:", *not_used]
    L.append("")

    cautions, counsel = _cautions(a, plan_actions(result, option))
    if cautions:
        L += ["## Cautions and actions", *cautions, ""]
    if counsel:
        L += ["## Counselling given", *counsel, ""]

    L += ["## Follow-up"]
    fu = result.follow_up
    if action == "refer":
        L.append("- The pharmacy does not treat this episode: please see the patient as advised above.")
    if fu is not None:  # the protocol's follow-up, for a prescription and, where the protocol has one, for the other decisions
        L.append(f"- {sentence(spec.wording.follow_up.format(reassess=fu.reassess))}")
        if fu.escalate_if:
            L.append(f"- Escalate (medical assessment) if: {', '.join(text(e) for e in fu.escalate_if)}.")
    L.append(f"- {sentence(spec.wording.return_line)}")
    L.append("")

    s = a.signoff
    if s is not None:
        verb = {"approve": "Approved", "amend": "Amended", "reject": "Rejected"}.get(s.action, text(s.action).capitalize())
        signed = f"{verb} by {text(s.prescriber_id)} on {text(_date(s.signed_at)) or SHORT}."
        if s.comment:
            signed += f" Comment: {sentence(s.comment)}"
    elif draft:
        signed = "Awaiting prescriber sign-off."
    else:
        signed = "No prescription: prescriber sign-off was not required."
    L += [f"**Sign-off:** {signed}", "", f"Signature: {BLANK}   Date: {SHORT}", ""]
    return "\n".join(L)


def patient_from_checkpoint(checkpointer: Any, assessment_id: str) -> dict[str, Any] | None:
    """The patient input the assessment's graph thread holds (None: no checkpoint, or unreadable).
    The store keeps the record without it; age and sex come from here."""
    try:
        found = checkpointer.get_tuple({"configurable": {"thread_id": assessment_id, "checkpoint_ns": ""}})
    except Exception:  # an unreadable checkpoint leaves the blank lines, never an error
        return None
    if found is None:
        return None
    patient = (found.checkpoint or {}).get("channel_values", {}).get("patient")
    return patient if isinstance(patient, dict) else None
