"""GET /v1/assessments/{id}/fhir: the document Bundle as application/fhir+json (or application/json),
406 for anything else, the same access control as every read; what is served is what fhirclient's
R4 models read back, and it follows the sign-off."""

from __future__ import annotations

import pytest
from fhirclient.models.bundle import Bundle

from clinreason.fhir.document import fhir_document
from clinreason.rendering import patient_from_checkpoint
from clinreason.samples import load_sample

FHIR, JSON = "application/fhir+json", "application/json"


@pytest.fixture
def stored(api):
    r = api.post_patient(load_sample("raas-nitrofurantoin-allergy"))
    assert r.status_code == 201, r.text
    return r.json()


def get(api, aid, accept=None, role="submitter"):
    headers = api.headers(role)
    if accept is not None:
        headers["Accept"] = accept
    return api.client.get(f"/v1/assessments/{aid}/fhir", headers=headers)


def resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.mark.parametrize(("accept", "media"), [(None, FHIR), ("*/*", FHIR), (FHIR, FHIR), (JSON, JSON), ("application/*", FHIR),
                                               ("application/json;q=0.9, application/fhir+json;q=0.5", JSON)])
def test_the_document_as_fhir_json(api, stored, offline_pipeline, accept, media):
    r = get(api, stored["id"], accept)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media and r.headers["vary"] == "Accept"
    bundle = r.json()
    assert Bundle(bundle, strict=True).as_json() == bundle
    a = offline_pipeline.get(stored["id"])
    assert bundle == fhir_document(a, patient_from_checkpoint(offline_pipeline.graph.checkpointer, a.id))
    [request] = resources(bundle, "MedicationRequest")
    assert request["medicationCodeableConcept"]["text"] == stored["plan"]["regimen"]["drug"]
    rules = {i["code"]["coding"][0]["code"] for i in resources(bundle, "DetectedIssue")}
    assert {"EX-HYPERKALEMIA", "EX-ALLERGY", "CA-NSAID-RAAS-DIURETIC"} <= rules
    assert resources(bundle, "Patient")[0]["gender"] == "female"  # from the checkpoint: the stored record holds no patient


def test_a_referral_through_the_api(api):
    r = api.post_patient(load_sample("lyme-stiff-neck"))
    assert r.status_code == 201, r.text
    bundle = get(api, r.json()["id"]).json()
    [referral] = resources(bundle, "ServiceRequest")
    assert referral["priority"] == "asap" and resources(bundle, "MedicationRequest") == []
    assert bundle["entry"][0]["resource"]["status"] == "final"


def test_the_sign_off_adds_a_provenance_naming_the_prescriber(api, stored):
    before = get(api, stored["id"]).json()
    assert resources(before, "Provenance") == [] and before["entry"][0]["resource"]["status"] == "preliminary"
    signed = api.client.post(f"/v1/assessments/{stored['id']}/signoff", json={"action": "approve"}, headers=api.headers("prescriber"))
    assert signed.status_code == 200, signed.text
    after = get(api, stored["id"]).json()
    [prov] = resources(after, "Provenance")
    who = prov["agent"][0]["who"]["identifier"]["value"]
    assert who == signed.json()["signoff"]["prescriber_id"] and who.startswith("test-prescriber")  # the signing key, not the body
    assert prov["activity"] == {"text": "approve"}
    assert prov["recorded"] == signed.json()["signoff"]["signed_at"]
    assert after["entry"][0]["resource"]["status"] == "final"


@pytest.mark.parametrize("accept", ["text/csv", "text/markdown", "application/xml", "application/fhir+json;q=0, application/json;q=0"])
def test_anything_else_is_406_listing_what_is_offered(api, stored, accept):
    r = get(api, stored["id"], accept)
    assert r.status_code == 406 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "urn:clinreason:problem:not-acceptable"
    assert problem["errors"] == [{"field": "Accept", "message": "supported: application/fhir+json, application/json"}]


def test_same_access_control_as_every_read(api, stored):
    other_site = api.store.create_key("elsewhere", "admin", "pharmacy-b")
    elsewhere = api.client.get(f"/v1/assessments/{stored['id']}/fhir", headers={"Authorization": f"Bearer {other_site}"})
    missing = get(api, "no-such-id")
    assert elsewhere.status_code == missing.status_code == 404  # another site's assessment looks missing
    assert elsewhere.json()["detail"] == f"no assessment '{stored['id']}'"
    anonymous = api.client.get(f"/v1/assessments/{stored['id']}/fhir")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"


def test_a_deterministic_result_is_not_stored_so_has_no_document(api):
    r = api.post_patient(load_sample("uncomplicated"), mode="deterministic")
    assert r.status_code == 200 and r.json()["id"] is None
    assert get(api, "None").status_code == 404


def test_the_openapi_document_lists_the_media_types(api):
    op = api.client.get("/openapi.json").json()["paths"]["/v1/assessments/{assessment_id}/fhir"]["get"]
    assert set(op["responses"]["200"]["content"]) == {FHIR, JSON}
    assert {"401", "403", "404", "406", "429", "503"} <= set(op["responses"])
    assert "Accept" in op["description"] and op["security"]
