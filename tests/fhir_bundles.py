"""Building FHIR R4 Bundles for tests: a patient JSON as the resources a record system would send
(Patient, MedicationStatement, AllergyIntolerance, a QuestionnaireResponse for the rest), and HL7's
published examples re-pointed at one patient."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from clinreason.fhir.questionnaire import canonical_url, field_items
from clinreason.protocols.registry import get_spec

TODAY = date(2026, 12, 1)
PATIENT_REF = "Patient/p1"


def patient(age: int, sex: str, today: date = TODAY, pid: str = "p1") -> dict[str, Any]:
    """A Patient born on 1 June, `age` years before `today`'s year (whole years on `today`)."""
    born = date(today.year - age - (1 if (today.month, today.day) < (6, 1) else 0), 6, 1)
    return {"resourceType": "Patient", "id": pid, "gender": sex, "birthDate": born.isoformat()}


def about(resource: dict[str, Any], ref: str = PATIENT_REF) -> dict[str, Any]:
    """A copy of `resource` about the patient `ref` (HL7's examples each name their own patient)."""
    out = copy.deepcopy(resource)
    out.pop("text", None)  # the narrative is not read
    key = "patient" if out["resourceType"] == "AllergyIntolerance" else "subject"
    out[key] = {"reference": ref}
    return out


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i:012d}", "resource": r}
                                                               for i, r in enumerate(resources)]}


def _answer(item: dict[str, Any], value: Any) -> dict[str, Any]:
    kind = item["type"]
    if kind == "choice":
        return {"valueCoding": {"system": item["answerOption"][0]["valueCoding"]["system"], "code": value}}
    key = {"boolean": "valueBoolean", "integer": "valueInteger", "decimal": "valueDecimal", "string": "valueString"}[kind]
    return {key: value}


def questionnaire_response(protocol_id: str, answers: dict[str, Any], ref: str = PATIENT_REF, qid: str = "qr1") -> dict[str, Any]:
    """A completed QuestionnaireResponse answering dotted fields; a list answers a repeating item."""
    items = field_items(get_spec(protocol_id))
    out = []
    for link, value in answers.items():
        values = value if isinstance(value, list) else [value]
        out.append({"linkId": link, "answer": [_answer(items[link], v) for v in values]})
    return {"resourceType": "QuestionnaireResponse", "id": qid, "questionnaire": canonical_url(protocol_id), "status": "completed",
            "subject": {"reference": ref}, "item": out}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def bundle_of(patient_json: dict[str, Any], today: date = TODAY) -> dict[str, Any]:
    """The Bundle a record system would send for `patient_json` (a protocol's request JSON):
    age and sex in the Patient, medications and allergies as resources, the rest answered."""
    protocol_id = patient_json.get("protocol", "uti-cystitis")
    spec = get_spec(protocol_id)
    parsed = spec.parse({k: v for k, v in patient_json.items() if k != "protocol"}).model_dump(mode="json")
    flat = {k: v for k, v in _flatten(parsed).items() if v is not None}
    resources: list[dict[str, Any]] = [patient(flat.pop("age"), flat.pop("sex"), today)]
    for i, text in enumerate(flat.pop(spec.fhir.medications, [])):
        resources.append({"resourceType": "MedicationStatement", "id": f"m{i}", "status": "active",
                          "medicationCodeableConcept": {"text": text}, "subject": {"reference": PATIENT_REF}})
    for i, text in enumerate(flat.pop(spec.fhir.allergies, [])):
        resources.append({"resourceType": "AllergyIntolerance", "id": f"a{i}", "patient": {"reference": PATIENT_REF},
                          "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                                         "code": "active"}]}, "code": {"text": text}})
    items = field_items(spec)
    answers = {k: v for k, v in flat.items() if k in items and v != []}
    resources.append(questionnaire_response(protocol_id, answers))
    return bundle(*resources)
