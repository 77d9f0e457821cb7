"""Draft orders (`context.draftOrders`) -> the protocol options they order, through the formulary.

An order names an option by its text (the CodeableConcept's text and codings' displays, or the
referenced Medication's) read by the formulary's exact-term scan, or by RxNorm ingredient codes that
are exactly the option's ingredients. Orders of anything else are not this protocol's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clinreason.fhir import codes
from clinreason.fhir.intake import referenced_medication
from clinreason.formulary import Formulary


@dataclass(frozen=True)
class DraftOrder:
    reference: str  # "MedicationRequest/123"
    resource: dict[str, Any]
    options: tuple[str, ...]  # the protocol options it orders, in formulary order
    text: str  # what the order says it is, for the card

    @property
    def subject(self) -> dict[str, Any] | None:
        subject = self.resource.get("subject")
        return subject if isinstance(subject, dict) else None


def _concepts(order: dict[str, Any], index: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(order.get("medicationCodeableConcept"), dict):
        return [order["medicationCodeableConcept"]]
    med = referenced_medication(order, index)
    if med is None:
        return []
    ingredients = [i["itemCodeableConcept"] for i in med.get("ingredient") or [] if isinstance(i, dict) and "itemCodeableConcept" in i]
    return [c for c in [med.get("code"), *ingredients] if isinstance(c, dict)]


def _texts(concept: dict[str, Any]) -> list[str]:
    out = [concept["text"]] if isinstance(concept.get("text"), str) else []
    out += [c["display"] for c in concept.get("coding") or [] if isinstance(c, dict) and isinstance(c.get("display"), str)]
    return [t[:300] for t in out if t.strip()]


def options_ordered(formulary: Formulary, concepts: list[dict[str, Any]]) -> tuple[str, ...]:
    found: set[str] = set()
    coded: set[str] = set()
    known = codes.rxnorm_ingredients()
    for concept in concepts:
        for text in _texts(concept):
            found.update(formulary.options_named(text))
        coded.update(known[c] for c in codes.codes_in(concept, codes.RXNORM) if c in known and known[c] in formulary.drugs)
    if coded:
        ingredients = set().union(*(formulary.ingredients_of(d) for d in coded))
        found.update(o for o, info in formulary.options.items() if info.drug in coded or formulary.ingredients_of(info.drug) == ingredients)
    return tuple(o for o in formulary.options if o in found)


def draft_orders(bundle: dict[str, Any], formulary: Formulary, only: list[str] | None = None) -> list[DraftOrder]:
    """The MedicationRequests of the Bundle (those in `only` when given: order-select's selections)."""
    resources = [e["resource"] for e in bundle.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    index = {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources}
    out = []
    for r in resources:
        reference = f"{r.get('resourceType')}/{r.get('id')}"
        if r.get("resourceType") != "MedicationRequest" or (only is not None and reference not in only):
            continue
        concepts = _concepts(r, index)
        text = next((t for c in concepts for t in _texts(c)), reference)
        out.append(DraftOrder(reference, r, options_ordered(formulary, concepts), text))
    return out
