"""The services clinreason offers: one per (registered protocol, hook), and their prefetch templates.

A CDS Hooks service declares exactly one hook, so each protocol is three services, with ids
`{protocol}-{hook}`. Distinct ids (rather than one id listed under three hooks, which the spec also
allows) keep each service's URL, JWT audience and feedback endpoint unambiguous for EHRs that key
their configuration on the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from clinreason.cds_hooks.models import HOOKS, Discovery, Hook, Service
from clinreason.protocols.registry import registry
from clinreason.protocols.spec import ProtocolSpec

PATIENT = "{{context.patientId}}"
DESCRIBE = {
    "patient-view": "Opening a patient's record: the protocol's assessment of the patient (decision, options, exclusions) "
                    "and a link to the full report.",
    "order-select": "Selecting a medication order: warns when the protocol excludes the ordered option for this patient, "
                    "says why, and suggests the option the protocol ranks first.",
    "order-sign": "Signing medication orders: the same check as order-select, on every draft order of the session.",
}


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: Hook
    spec: ProtocolSpec

    @property
    def prefetch(self) -> dict[str, str]:
        return prefetch_templates(self.spec)

    def describe(self) -> Service:
        return Service(hook=self.hook, id=self.id, title=f"clinreason: {self.spec.title} ({self.hook})",
                       description=f"{DESCRIBE[self.hook]} Protocol {self.spec.id} {self.spec.version}.",
                       prefetch=self.prefetch,
                       usageRequirements="Requests carry a JWT signed by the EHR (Authorization: Bearer). Every prefetch key is needed; "
                                         "a key not sent is fetched from fhirServer when the request gives one, else the call is 412.")


def prefetch_templates(spec: ProtocolSpec) -> dict[str, str]:
    """What the protocol's intake reads: the coded record and the answers to the protocol's questionnaire."""
    from clinreason.fhir.codes import LOINC
    from clinreason.fhir.questionnaire import canonical_url

    out = {
        "patient": f"Patient/{PATIENT}",
        "medicationStatements": f"MedicationStatement?patient={PATIENT}&status=active",
        "medicationRequests": f"MedicationRequest?patient={PATIENT}&status=active",
        "allergies": f"AllergyIntolerance?patient={PATIENT}",  # refuted ones too: the intake lists what it ignores
        "conditions": f"Condition?patient={PATIENT}",
    }
    loinc = sorted({code for o in spec.fhir.observations for code in o.codes.loinc})
    if loinc:
        out["observations"] = f"Observation?patient={PATIENT}&code=" + ",".join(f"{LOINC}|{c}" for c in loinc)
    out["questionnaireResponse"] = f"QuestionnaireResponse?patient={PATIENT}&questionnaire={canonical_url(spec.id)}&_sort=-authored&_count=1"
    return out


@cache
def services() -> dict[str, CdsService]:
    return {f"{spec.id}-{hook}": CdsService(f"{spec.id}-{hook}", hook, spec) for spec in registry().values() for hook in HOOKS}


def discovery() -> Discovery:
    return Discovery(services=[s.describe() for s in services().values()])
