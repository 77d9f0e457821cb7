"""POST /v1/assessments with a FHIR R4 Bundle, and GET /v1/protocols/{id}/questionnaire."""

from __future__ import annotations

from datetime import date

import pytest

from clinreason.samples import load_sample
from fhir_bundles import bundle_of, questionnaire_response

FHIR = {"Content-Type": "application/fhir+json"}
IPS_PATIENT = "urn:uuid:2b90dd2b-2dab-4c75-9bb9-a355e07401e8"


def post_bundle(api, b, role="submitter", **params):
    import json

    return api.client.post("/v1/assessments", content=json.dumps(b), headers={**api.headers(role), **FHIR}, params=params)


def _age_today(born: date) -> int:
    t = date.today()
    return t.year - born.year - ((t.month, t.day) < (born.month, born.day))


@pytest.fixture
def ips_bundle(hl7_resource):
    b = hl7_resource("ips", "Bundle-IPS-examples-Bundle-01.json")
    answers = {"pregnancy_status": "not_pregnant", "renal_function_summary": "normal", "locale_code": "CA-ON",
               "symptoms.dysuria": True, "symptoms.urgency": True, "symptoms.frequency": True, "symptoms.suprapubic_pain": False,
               "symptoms.hematuria": False, **{f"red_flags.{k}": False for k in ("fever", "rigors", "flank_pain", "nausea_vomiting", "systemic")},
               **{f"history.{k}": False for k in ("antibiotics_last_90d", "catheter", "stones", "immunocompromised")},
               **{f"recurrence.{k}": False for k in ("relapse_within_4w", "recurrent_6m", "recurrent_12m")}}
    b["entry"].append({"fullUrl": "urn:uuid:qr-1", "resource": questionnaire_response("uti-cystitis", answers, ref=IPS_PATIENT)})
    return b


def test_hl7_ips_bundle_gives_the_decision_of_the_equivalent_json(api, ips_bundle):
    r = post_bundle(api, ips_bundle)
    assert r.status_code == 201, r.text
    via_fhir = r.json()
    equivalent = {"age": _age_today(date(1972, 5, 1)), "sex": "female", "pregnancy_status": "not_pregnant", "renal_function_summary": "normal",
                  "locale_code": "CA-ON", "symptoms": {"dysuria": True, "urgency": True, "frequency": True, "suprapubic_pain": False, "hematuria": False},
                  "red_flags": {k: False for k in ("fever", "rigors", "flank_pain", "nausea_vomiting", "systemic")},
                  "history": {"antibiotics_last_90d": False, "catheter": False, "stones": False, "immunocompromised": False,
                              "meds": ["anastrozole", "Black Cohosh Extract herbal supplement"], "allergies": ["penicillin"]},
                  "recurrence": {"relapse_within_4w": False, "recurrent_6m": False, "recurrent_12m": False}}
    via_json = api.post_patient(equivalent).json()
    assert via_fhir["input_hash"] == via_json["input_hash"]
    assert via_fhir["decision"] == via_json["decision"] == "recommend_treatment"
    assert via_fhir["plan"]["option"] == via_json["plan"]["option"]
    # The report shows where each field came from, and what was left out.
    report = via_fhir["report_markdown"]
    assert "### Where the input came from (FHIR R4 Bundle)" in report
    assert "- age: Patient/2b90dd2b-2dab-4c75-9bb9-a355e07401e8.birthDate (1972-05-01" in report
    assert "- AllergyIntolerance/c7781f44-6df8-4a8b-9e06-0b34263a47c5: records 'No known food allergy': nothing to add" in report
    assert via_fhir["audit"]["input_format"].startswith("FHIR R4 Bundle: ")
    assert "input_format" not in via_json["audit"] and via_json["input_sources"] is None
    stored = api.client.get(f"/v1/assessments/{via_fhir['id']}", headers=api.headers("submitter")).json()
    assert stored["input_sources"] == via_fhir["input_sources"]


def test_lisinopril_from_a_medication_statement_excludes_like_json(api):
    """The Quick start patient on lisinopril, sent as resources: the same exclusions, deterministic mode."""
    sample = load_sample("raas-nitrofurantoin-allergy")
    r = post_bundle(api, bundle_of(sample, today=date.today()), mode="deterministic")
    assert r.status_code == 200, r.text
    j = api.post_patient(sample, mode="deterministic").json()
    f = r.json()
    assert f["decision"] == j["decision"] and f["input_hash"] == j["input_hash"]
    excluded = {o["option"]: [e["rule_id"] for e in o["exclusions"]] for o in f["protocol"]["options"] if o["exclusions"]}
    assert excluded == {o["option"]: [e["rule_id"] for e in o["exclusions"]] for o in j["protocol"]["options"] if o["exclusions"]}
    assert any(src["field"].startswith("history.meds[") and src["source"].startswith("MedicationStatement/")
               for src in f["input_sources"]["fields"])


def test_unanswered_items_are_field_errors_naming_the_fhir_path(api, ips_bundle):
    ips_bundle["entry"].pop()  # no QuestionnaireResponse
    r = post_bundle(api, ips_bundle, locale_code="CA-ON")
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert "QuestionnaireResponse.item[symptoms.dysuria]" in fields
    assert "Observation[82810-3] or Condition[77386006|Z33.1] or QuestionnaireResponse.item[pregnancy_status]" in fields


def test_invalid_fhir_is_422_naming_the_element(api):
    r = post_bundle(api, {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", "gender": 7}}]})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["Bundle.entry[0].resource.gender"]


def test_fhir_query_parameters_are_refused_for_json(api):
    r = api.post_patient(load_sample("raas-nitrofurantoin-allergy"), locale_code="CA-ON")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "locale_code"


def test_questionnaire_endpoint(api):
    from fhirclient.models.questionnaire import Questionnaire

    r = api.client.get("/v1/protocols/lyme-pep/questionnaire", headers=api.headers("submitter"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    q = Questionnaire(r.json(), strict=True)
    assert q.url == "https://clinreason.org/fhir/Questionnaire/lyme-pep"
    groups = {i.linkId: i for i in q.item}
    assert groups["tick"].type == "group" and {i.linkId for i in groups["tick"].item} >= {"tick.still_attached", "tick.estimated_hours_attached"}
    assert api.client.get("/v1/protocols/nope/questionnaire", headers=api.headers("submitter")).status_code == 404
    assert api.client.get("/v1/protocols/lyme-pep/questionnaire").status_code == 401
