"""Cards from a protocol result: pure functions of (validated patient, result, draft orders).

- An ordered option the protocol excludes for this patient: `critical`, each exclusion's reason and
  evidence, and a suggestion that swaps the order for the allowed option the protocol ranks first.
- An ordered option left unverified by entries the formulary does not recognise: `warning`.
- Cautions on an ordered, allowed option: `info`.
- A referral or no-treatment decision while an option is being ordered: its own card, with a
  suggestion to cancel the order.
- patient-view: the assessment summary, linking to the full report.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from clinreason.cds_hooks.models import (
    SUMMARY_MAX,
    Action,
    Card,
    Coding,
    Link,
    Source,
    Suggestion,
)
from clinreason.cds_hooks.orders import DraftOrder
from clinreason.errors import FieldError
from clinreason.fhir import codes
from clinreason.fhir.questionnaire import CANONICAL_BASE
from clinreason.protocols.registry import Validated
from clinreason.protocols.result import ProtocolResult, Regimen

Indicator = Literal["info", "warning", "critical"]
OVERRIDE_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/cds-hooks-override-reason"
OVERRIDE_REASONS = (
    ("benefit-outweighs-risk", "Benefit outweighs the risk for this patient"),
    ("record-incorrect", "The record is wrong or out of date (medication, allergy, result)"),
    ("will-monitor", "Aware of the risk: will monitor and counsel the patient"),
    ("prescriber-directed", "Ordered on a physician's or nurse practitioner's direction"),
)


@dataclass(frozen=True)
class CardContext:
    source: Source
    patient_reference: str  # "Patient/123": the subject of a suggested order
    report: Link | None = None


def override_reasons() -> list[Coding]:
    return [Coding(code=code, system=OVERRIDE_SYSTEM, display=display) for code, display in OVERRIDE_REASONS]


def short(text: str) -> str:
    """One line under the spec's 140 characters."""
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "\u2026"


def _id() -> str:
    return str(uuid.uuid4())


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + ("." if dot else "")


def _urgent(validated: Validated, result: ProtocolResult) -> Indicator:
    decision = validated.spec.decision(result.decision)
    return "critical" if decision.urgency == "emergency_or_same_day" else "warning"


def first_allowed(result: ProtocolResult) -> str | None:
    """The option the protocol ranks first among those it allows (its recommendation, when it made one)."""
    if result.recommendation is not None:
        return result.recommendation.agent
    ranked = sorted((o for o in result.options if o.option in result.selectable_options), key=lambda o: o.rank)
    return ranked[0].option if ranked else None


def proposed_order(validated: Validated, regimen: Regimen, order: DraftOrder, ctx: CardContext) -> dict[str, object]:
    """A draft MedicationRequest for the protocol's regimen, for the same patient and intent as the order it replaces."""
    drug = validated.spec.formulary.options[regimen.agent].drug
    cui = next((code for code, entry in codes.rxnorm_ingredients().items() if entry == drug), None)
    concept: dict[str, object] = {"text": f"{regimen.drug} {regimen.dose}"}
    if cui is not None:
        concept["coding"] = [{"system": codes.RXNORM, "code": cui, "display": regimen.drug}]
    dosage = f"{regimen.dose} {regimen.route} {regimen.frequency} x {regimen.duration}" + (f" ({regimen.note})" if regimen.note else "")
    return {"resourceType": "MedicationRequest", "status": "draft", "intent": order.resource.get("intent") or "order",
            "subject": order.subject or {"reference": ctx.patient_reference}, "medicationCodeableConcept": concept,
            "dosageInstruction": [{"text": dosage}]}


def _swap(validated: Validated, result: ProtocolResult, order: DraftOrder, ctx: CardContext) -> Suggestion | None:
    option = first_allowed(result)
    regimen = result.regimen_for(option) if option else None
    if option is None or regimen is None or validated.spec.plan_kind(result) != "treat":
        return None
    name = validated.spec.option_name(option)
    return Suggestion(label=short(f"Replace with {name}: {regimen.text}"), uuid=_id(), isRecommended=True, actions=[
        Action(type="delete", description=f"Remove the draft order {order.text!r}", resourceId=order.reference),
        Action(type="create", description=f"Order {regimen.text}", resource=proposed_order(validated, regimen, order, ctx)),
    ])


def _cancel(orders: list[DraftOrder]) -> Suggestion:
    return Suggestion(label="Cancel the order" + ("s" if len(orders) > 1 else ""), uuid=_id(), isRecommended=True, actions=[
        Action(type="delete", description=f"Remove the draft order {o.text!r}", resourceId=o.reference) for o in orders])


def _card(summary: str, detail: str, indicator: Indicator, ctx: CardContext, suggestions: list[Suggestion] | None = None,
          links: list[Link] | None = None, overridable: bool = True) -> Card:
    return Card(uuid=_id(), summary=short(summary), detail=detail or None, indicator=indicator, source=ctx.source,
                suggestions=suggestions or None, selectionBehavior="at-most-one" if suggestions else None,
                overrideReasons=override_reasons() if overridable else None, links=links or None)


def _heading(validated: Validated) -> str:
    return f"**{validated.spec.title}** (profile {validated.profile.id} {validated.profile.version})"


def exclusion_card(validated: Validated, result: ProtocolResult, order: DraftOrder, option: str, ctx: CardContext) -> Card:
    spec, evaluation = validated.spec, result.option(option)
    name = spec.option_name(option)
    first = evaluation.exclusions[0]
    more = f" (+{len(evaluation.exclusions) - 1} more)" if len(evaluation.exclusions) > 1 else ""
    lines = [f"{_heading(validated)} excludes {name} for this patient:", ""]
    lines += [f"- {e.reason} *In the record:* {e.evidence} (rule {e.rule_id})" for e in evaluation.exclusions]
    swap = _swap(validated, result, order, ctx)
    if swap is not None:
        alternative = first_allowed(result)
        regimen = result.regimen_for(alternative or "")
        lines += ["", f"The protocol's first allowed option is **{spec.option_name(alternative or '')}**: {regimen.text if regimen else ''}."]
    elif spec.plan_kind(result) != "treat":
        lines += ["", f"The protocol does not treat this patient: {spec.decision(result.decision).meaning}."]
    return _card(f"Do not use {name}: {_first_sentence(first.reason)}{more}", "\n".join(lines), "critical", ctx,
                 [swap] if swap else [_cancel([order])])


def unverified_card(validated: Validated, result: ProtocolResult, option: str, ctx: CardContext) -> Card:
    name = validated.spec.option_name(option)
    checks = result.checks_for(option)
    intro = (f"{_heading(validated)} allows {name}, but these record entries are not recognised, so their interactions "
             "with it are not checked. Check each by hand before signing:")
    lines = [intro, ""]
    lines += [f"- {e.field}: {e.entry!r} ({e.reason})" for e in checks]
    return _card(f"{name}: {len(checks)} record entr{'y' if len(checks) == 1 else 'ies'} could not be checked against it",
                 "\n".join(lines), "warning", ctx)


def caution_card(validated: Validated, result: ProtocolResult, option: str, ctx: CardContext) -> Card | None:
    cautions = [c for c in result.cautions if c.option == option]
    if not cautions:
        return None
    name = validated.spec.option_name(option)
    lines = [f"- **{c.severity}**: {c.message} *Action:* {c.action} (rule {c.rule_id})" for c in cautions]
    return _card(f"{name}: {_first_sentence(cautions[0].message)}", "\n".join(lines), "info", ctx, overridable=False)


def decision_card(validated: Validated, result: ProtocolResult, orders: list[DraftOrder], ctx: CardContext) -> Card:
    spec = validated.spec
    decision = spec.decision(result.decision)
    plan = decision.plan
    lead = "Refer, do not prescribe" if plan == "refer" else "Treatment not indicated"
    lines = [f"{_heading(validated)} decides **{result.decision}**: {decision.meaning}.", "", "Why:"]
    lines += [f"- {r.title}: {r.detail} (rule {r.rule_id})" for r in result.rules_fired]
    if decision.advice:
        lines += ["", decision.advice]
    return _card(f"{lead}: {decision.meaning}", "\n".join(lines), _urgent(validated, result) if plan == "refer" else "warning",
                 ctx, [_cancel(orders)], links=[ctx.report] if ctx.report else None)


def cards_for(validated: Validated, result: ProtocolResult, orders: list[DraftOrder], ctx: CardContext) -> list[Card]:
    """order-select / order-sign: the cards for the draft orders that order one of the protocol's options."""
    relevant = [o for o in orders if o.options]
    if not relevant:
        return []
    out: list[Card] = []
    if validated.spec.plan_kind(result) != "treat":
        out.append(decision_card(validated, result, relevant, ctx))
    for order in relevant:
        for option in order.options:
            evaluation = result.find_option(option)
            if evaluation is None:  # not an option of this profile
                continue
            if not evaluation.allowed:
                out.append(exclusion_card(validated, result, order, option, ctx))
                continue
            if evaluation.unverified_by:
                out.append(unverified_card(validated, result, option, ctx))
            if (caution := caution_card(validated, result, option, ctx)) is not None:
                out.append(caution)
    return out


def summary_card(validated: Validated, result: ProtocolResult, ctx: CardContext) -> Card:
    """patient-view: what the protocol decides for this patient, and why."""
    spec = validated.spec
    decision = spec.decision(result.decision)
    if decision.plan == "treat" and result.recommendation is not None:
        summary, indicator = f"{spec.title}: {result.recommendation.text}", "info"
    elif decision.plan == "refer":
        summary, indicator = f"{spec.title}: refer, {decision.meaning}", _urgent(validated, result)
    else:
        summary, indicator = f"{spec.title}: {decision.meaning}", "info"
    lines = [f"{_heading(validated)}: **{result.decision}**, {decision.meaning}.", "", *spec.patient_summary(validated.patient), "",
             "Options, in the protocol's order:"]
    for o in sorted(result.options, key=lambda o: o.rank):
        state = "allowed" if o.verified else "allowed, not verified" if o.allowed else "excluded: " + "; ".join(e.reason for e in o.exclusions)
        lines.append(f"{o.rank}. {spec.option_name(o.option)}: {state}")
    lines += [f"\n*{f.code}*: {f.message}" for f in result.flags]
    lines += [f"\n*Check before signing*: {e.field} {e.entry!r}: {e.reason}" for e in result.blocking_checks]
    return _card(summary, "\n".join(lines), indicator, ctx, links=[ctx.report] if ctx.report else None, overridable=False)


def not_assessed_card(validated_title: str, errors: list[FieldError], indicator: Indicator, ctx: CardContext) -> Card:
    """The record does not settle what the protocol needs: nothing is guessed, the fields are named."""
    lines = ["clinreason assesses only what the record settles. Missing or unreadable:", ""]
    lines += [f"- `{e.field}`: {e.message}" for e in errors[:20]]
    n = len(errors)
    return _card(f"{validated_title}: not assessed, the record leaves {n} field{'s' if n != 1 else ''} unsettled",
                 "\n".join(lines), indicator, ctx, overridable=False)
