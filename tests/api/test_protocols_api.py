"""Protocol selection over REST: GET /v1/protocols, the `protocol` field, field errors, OpenAPI."""

from __future__ import annotations

from clinreason.samples import load_sample


def test_protocols_lists_both_with_profiles_decisions_and_schemas(api) -> None:
    r = api.client.get("/v1/protocols", headers=api.headers("submitter"))
    assert r.status_code == 200
    body = r.json()
    assert body["default"] == "uti-cystitis"
    by_id = {p["id"]: p for p in body["protocols"]}
    assert set(by_id) == {"uti-cystitis", "lyme-pep"}
    lyme = by_id["lyme-pep"]
    assert {p["id"]: p["locale_codes"] for p in lyme["profiles"]} == {"CA-ON": ["CA-ON"], "US-IDSA": ["US"]}
    assert {d["value"]: d["plan"] for d in lyme["decisions"]} == {
        "recommend_prophylaxis": "treat", "refer_symptomatic": "refer", "refer_contraindicated": "refer", "no_prophylaxis": "none"}
    assert "tick" in lyme["input_schema"]["properties"] and "dysuria" not in str(lyme["input_schema"])
    assert "symptoms" in by_id["uti-cystitis"]["input_schema"]["properties"]


def test_protocols_needs_a_key(api) -> None:
    assert api.client.get("/v1/protocols").status_code == 401


def test_a_lyme_request_is_assessed_by_its_protocol(api) -> None:
    r = api.post_patient(load_sample("lyme-child-weight-dosing-ca-on"), mode="deterministic")
    assert r.status_code == 200
    a = r.json()
    assert a["decision"] == "recommend_prophylaxis" and a["recommendation"]["dose"] == "90 mg"
    assert a["protocol"]["protocol_id"] == "lyme-pep" and a["protocol"]["profile_id"] == "CA-ON"


def test_a_request_without_protocol_is_still_uti(api) -> None:
    r = api.post_patient(load_sample("uncomplicated"), mode="deterministic")
    assert r.status_code == 200 and r.json()["decision"] == "recommend_treatment"


def test_full_lyme_assessment_is_stored_and_its_report_served(api) -> None:
    r = api.post_patient(load_sample("lyme-antacid-caution"))
    assert r.status_code == 201
    aid = r.json()["id"]
    report = api.client.get(f"/v1/assessments/{aid}/report", headers=api.headers("submitter"))
    assert report.status_code == 200 and report.text.startswith("# Lyme disease prophylaxis assessment (US-IDSA)")
    assert "4 to 6 hours after" in report.text


def test_unknown_protocol_and_missing_child_weight_are_field_errors(api) -> None:
    r = api.post_patient({**load_sample("lyme-adult-prophylaxis"), "protocol": "lyme"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "protocol"
    child = load_sample("lyme-child-weight-dosing-us")
    del child["weight_kg"]
    r = api.post_patient(child)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["weight_kg"]
    # A UTI field in a Lyme request is an unknown field, not silently dropped.
    r = api.post_patient({**load_sample("lyme-adult-prophylaxis"), "red_flags": {}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "red_flags"


def test_openapi_documents_one_request_schema_per_protocol(api) -> None:
    spec = api.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    refs = [s["$ref"].rsplit("/", 1)[1] for s in schemas["AssessmentRequest"]["oneOf"]]
    assert sorted(refs) == ["LymePepRequest", "UtiCystitisRequest"]
    assert schemas["LymePepRequest"]["properties"]["locale_code"]["enum"] == ["CA-ON", "US"]
    assert "protocol" in schemas["LymePepRequest"]["required"] and "protocol" not in schemas["UtiCystitisRequest"].get("required", [])
    body = spec["paths"]["/v1/assessments"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {"uti-cystitis", "lyme-pep"}
