"""REST endpoints: the assessment lifecycle, auth, errors as problem+json."""

from __future__ import annotations

from patients import make_patient

from clinreason import assess
from clinreason.samples import load_sample, sample_index, sample_protocol

PROBLEM = "application/problem+json"


def test_full_lifecycle_create_read_report_signoff(api):
    r = api.post_patient(load_sample("raas-nitrofurantoin-allergy"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/v1/assessments/{body['id']}"
    assert body["status"] == "awaiting_signoff" and body["recommendation"]["agent"] == "fosfomycin"

    got = api.client.get(f"/v1/assessments/{body['id']}", headers=api.headers("submitter"))
    assert got.status_code == 200 and got.json()["plan"]["option"] == "fosfomycin"

    report = api.client.get(f"/v1/assessments/{body['id']}/report", headers=api.headers("submitter"))
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/markdown")
    assert "EX-HYPERKALEMIA" in report.text and "## References" in report.text

    signed = api.client.post(f"/v1/assessments/{body['id']}/signoff", json={"action": "approve", "comment": "ok"}, headers=api.headers("prescriber"))
    assert signed.status_code == 200, signed.text
    s = signed.json()
    assert s["status"] == "final" and s["signoff"]["prescriber_id"].startswith("test-prescriber")

    again = api.client.post(f"/v1/assessments/{body['id']}/signoff", json={"action": "approve"}, headers=api.headers("prescriber"))
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM


def test_deterministic_mode_over_rest(api):
    r = api.post_patient(load_sample("warfarin"), mode="deterministic")
    assert r.status_code == 200
    assert r.json()["recommendation"]["agent"] == "trimethoprim" and r.json()["id"] is None


def test_invalid_patient_is_422_with_field_errors_never_500(api):
    r = api.post_patient(make_patient(age=300, sex="male", pregnancy_status="pregnant", shoe_size=9))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"age", "pregnancy_status", "shoe_size"} <= fields
    assert r.json()["type"] == "urn:clinreason:problem:invalid-patient"


def test_malformed_and_non_object_bodies(api):
    r = api.client.post("/v1/assessments", content=b"{nope", headers={**api.headers("submitter"), "content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    r = api.post_patient([1, 2, 3])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "(root)"
    r = api.client.post("/v1/assessments", content=b"", headers=api.headers("submitter"))
    assert r.status_code == 400


def test_body_size_limit(api):
    huge = make_patient(notes="x" * 70_000)  # over the 64 KiB default
    r = api.client.post("/v1/assessments", json=huge, headers=api.headers("submitter"))
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM

    def chunks():  # no Content-Length: the limit applies to the bytes as they stream in
        yield b'{"age": 30, "notes": "'
        for _ in range(80):
            yield b"y" * 1000
        yield b'"}'
    r = api.client.post("/v1/assessments", content=chunks(), headers={**api.headers("submitter"), "content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM


def test_auth_errors(api):
    no_key = api.client.post("/v1/assessments", json=load_sample("uncomplicated"))
    assert no_key.status_code == 401 and no_key.headers["www-authenticate"] == "Bearer"
    bad = api.client.get("/v1/assessments", headers={"Authorization": "Bearer cr_nothere_secret"})
    assert bad.status_code == 401 and bad.headers["content-type"] == PROBLEM
    created = api.post_patient(load_sample("uncomplicated")).json()
    forbidden = api.client.post(f"/v1/assessments/{created['id']}/signoff", json={"action": "approve"}, headers=api.headers("submitter"))
    assert forbidden.status_code == 403 and "submitter" in forbidden.json()["detail"]


def test_revoked_key_is_refused(api):
    key = api.store.create_key("temp", "submitter", "pharmacy-a")
    assert api.client.get("/v1/assessments", headers={"X-API-Key": key}).status_code == 200
    api.store.revoke_key(key.split("_")[1])
    assert api.client.get("/v1/assessments", headers={"X-API-Key": key}).status_code == 401


def test_keys_are_stored_hashed(api):
    secret = api.keys["admin"].split("_", 2)[2]
    dump = "\n".join(str(k) for k in api.store.list_keys())
    assert secret not in dump
    from sqlalchemy import select

    from clinreason.store.schema import api_keys
    with api.store.engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.key_hash).where(api_keys.c.key_id == api.keys["admin"].split("_")[1])).scalar_one()
    assert stored != secret and len(stored) == 64


def test_signoff_errors(api):
    created = api.post_patient(load_sample("warfarin")).json()
    url = f"/v1/assessments/{created['id']}/signoff"
    r = api.client.post(url, json={"action": "amend", "agent": "tmp_smx"}, headers=api.headers("prescriber"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "agent" and "EX-WARFARIN" in r.json()["errors"][0]["message"]
    r = api.client.post(url, json={"action": "bless", "extra": 1}, headers=api.headers("prescriber"))
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"action", "extra"}
    r = api.client.post("/v1/assessments/nope/signoff", json={"action": "approve"}, headers=api.headers("prescriber"))
    assert r.status_code == 404
    r = api.client.post(url, json={"action": "amend", "agent": "fosfomycin"}, headers=api.headers("prescriber"))
    assert r.status_code == 200 and r.json()["plan"]["option"] == "fosfomycin"


def test_list_with_status_filter_and_pages(api):
    ids = {api.post_patient(load_sample(n)).json()["id"] for n in ("male", "pregnant", "uncomplicated")}
    page = api.client.get("/v1/assessments", params={"status": "final", "page_size": 2}, headers=api.headers("submitter")).json()
    assert page["page_size"] == 2 and len(page["items"]) <= 2 and page["total"] >= 2
    assert all(item["status"] == "final" for item in page["items"])
    everything, page_no = [], 1
    while True:
        chunk = api.client.get("/v1/assessments", params={"page": page_no, "page_size": 100}, headers=api.headers("admin")).json()
        everything += chunk["items"]
        if len(everything) >= chunk["total"]:
            break
        page_no += 1
    assert ids <= {i["id"] for i in everything}
    bad = api.client.get("/v1/assessments", params={"page": 0}, headers=api.headers("admin"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.page"


def test_access_log_records_who_did_what(api):
    created = api.post_patient(load_sample("uncomplicated")).json()
    api.client.get(f"/v1/assessments/{created['id']}", headers=api.headers("admin"))
    api.client.get(f"/v1/assessments/{created['id']}/report", headers=api.headers("submitter"))
    api.client.post(f"/v1/assessments/{created['id']}/signoff", json={"action": "reject"}, headers=api.headers("prescriber"))
    log = api.store.access_log(created["id"])
    assert [(e["key_name"], e["action"], e["status"]) for e in log] == [
        ("test-submitter", "create", 201), ("test-admin", "read", 200), ("test-submitter", "read_report", 200),
        ("test-prescriber", "signoff", 200)]
    assert all(e["at"] for e in log)


def test_health_ready_metrics(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok", "index": "ok", "warm": "ok"}
    api.post_patient(load_sample("male"))
    text = api.client.get("/metrics").text
    assert 'clinreason_decisions_total{decision="refer_complicated",mode="full"}' in text
    assert 'clinreason_http_requests_total{method="POST",route="/v1/assessments",status="201"}' in text
    assert "clinreason_llm_fallbacks_total" in text and "clinreason_dropped_citations_total" in text


def test_openapi_documents_the_patient_schema_with_an_example(api):
    spec = api.client.get("/openapi.json").json()
    body = spec["paths"]["/v1/assessments"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/AssessmentRequest"}
    assert {"$ref": "#/components/schemas/UtiCystitisRequest"} in spec["components"]["schemas"]["AssessmentRequest"]["oneOf"]
    # each protocol's example is one of its bundled samples, and a valid request
    example = body["examples"]["uti-cystitis"]["value"]
    assert example in [load_sample(name) for name in sample_index() if sample_protocol(name) == "uti-cystitis"]
    assert assess(example, mode="deterministic").protocol.protocol_id == "uti-cystitis"
    assert "ACEI_ARB_use" in spec["components"]["schemas"]["UtiCystitisHistory"]["properties"]


def test_unknown_locale_is_a_field_error(api):
    patient = load_sample("uncomplicated") | {"locale_code": "US-TX"}
    r = api.post_patient(patient)
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "locale_code", "message": "no protocol profile for 'US-TX' (available: CA-ON)"}]


def test_signoff_of_a_plan_with_blocking_checks_is_409_until_acknowledged(api):
    patient = make_patient(age=17, history={"meds": ["Zorbaxol 20 mg daily"], "allergies": ["nitrofurantoin"]})
    created = api.post_patient(patient).json()
    assert created["plan"]["option"] == "tmp_smx"
    assert [c["field"] for c in created["plan"]["blocking_checks"]] == ["history.meds[0]"]
    url = f"/v1/assessments/{created['id']}/signoff"
    r = api.client.post(url, json={"action": "approve"}, headers=api.headers("prescriber"))
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:clinreason:problem:blocking-checks-pending"
    assert r.json()["errors"][0]["field"] == "acknowledged" and "Zorbaxol" in r.json()["errors"][0]["message"]
    r = api.client.post(url, json={"action": "approve", "acknowledged": ["latex"]}, headers=api.headers("prescriber"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "acknowledged"
    r = api.client.post(url, json={"action": "approve", "acknowledged": ["Zorbaxol 20 mg daily"]}, headers=api.headers("prescriber"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "final" and r.json()["signoff"]["acknowledged"] == ["Zorbaxol 20 mg daily"]
    log = [row["status"] for row in api.store.access_log(created["id"]) if row["action"] == "signoff"]
    assert sorted(log) == [200, 409, 422]  # every attempt is on the record


def test_a_mixed_script_name_is_a_422_naming_the_entry(api):
    r = api.post_patient(make_patient(history={"meds": ["warfar\u0456n 5 mg"]}))
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == "history.meds[0]" and "mixes letters of different scripts" in error["message"]
