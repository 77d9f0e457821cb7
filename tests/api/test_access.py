"""Sites confine keys to their pharmacy's assessments; every request is on the access log;
Idempotency-Key makes a retried POST safe."""

from __future__ import annotations

import uuid

import pytest
from patients import make_patient

from clinreason.samples import load_sample


@pytest.fixture
def sites(api):
    """Keys at a second pharmacy, and a global admin, beside the fixture's keys at pharmacy-a."""
    store = api.store
    other = {role: store.create_key(f"other-{role}", role, "pharmacy-b") for role in ("submitter", "prescriber", "admin")}
    return {"b": other, "global": store.create_key("global-admin", "admin")}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_another_sites_assessment_is_not_found_for_every_role_there(api, sites):
    created = api.post_patient(load_sample("warfarin")).json()
    aid = created["id"]
    for role, key in sites["b"].items():
        for path in (f"/v1/assessments/{aid}", f"/v1/assessments/{aid}/report"):
            r = api.client.get(path, headers=_auth(key))
            assert r.status_code == 404, (role, path)
            assert r.json()["detail"] == f"no assessment {aid!r}"  # the same answer as for an id that does not exist
        listed = api.client.get("/v1/assessments", params={"page_size": 100}, headers=_auth(key)).json()
        assert aid not in {i["id"] for i in listed["items"]}
    # Pharmacy B's prescriber cannot sign pharmacy A's assessment off, and the attempt changes nothing.
    r = api.client.post(f"/v1/assessments/{aid}/signoff", json={"action": "approve"}, headers=_auth(sites["b"]["prescriber"]))
    assert r.status_code == 404
    assert api.store.status_of(aid)[0] == "awaiting_signoff"
    # Pharmacy A's own prescriber can; a global admin reads every site.
    r = api.client.post(f"/v1/assessments/{aid}/signoff", json={"action": "approve"}, headers=api.headers("prescriber"))
    assert r.status_code == 200 and r.json()["signoff"]["action"] == "approve"
    assert api.client.get(f"/v1/assessments/{aid}", headers=_auth(sites["global"])).status_code == 200


def test_a_site_admin_sees_only_its_site_and_a_global_admin_sees_all(api, sites):
    a = api.post_patient(load_sample("uncomplicated")).json()["id"]
    b = api.client.post("/v1/assessments", json=load_sample("uncomplicated"), headers=_auth(sites["b"]["submitter"])).json()["id"]

    def ids(key: str) -> set[str]:
        return {i["id"] for i in api.client.get("/v1/assessments", params={"page_size": 100}, headers=_auth(key)).json()["items"]}

    assert a in ids(api.keys["admin"]) and b not in ids(api.keys["admin"])
    assert b in ids(sites["b"]["admin"]) and a not in ids(sites["b"]["admin"])
    assert {a, b} <= ids(sites["global"])


def test_each_assessment_records_who_submitted_it(api):
    created = api.post_patient(load_sample("uncomplicated")).json()
    key_id = api.keys["submitter"].split("_")[1]
    assert created["audit"]["submitted_by"] == {"key_id": key_id, "name": "test-submitter", "site": "pharmacy-a"}
    assert api.store.owner(created["id"]) == ("pharmacy-a", key_id)
    # Sign-off keeps the submitter on the record.
    signed = api.client.post(f"/v1/assessments/{created['id']}/signoff", json={"action": "reject"}, headers=api.headers("prescriber")).json()
    assert signed["audit"]["submitted_by"]["key_id"] == key_id


def _log_rows(api, **match) -> list[dict]:
    return [row for row in api.store.access_log() if all(row[k] == v for k, v in match.items())]


def test_refused_requests_are_on_the_access_log(api, api_factory):
    route = f"/v1/missing-{uuid.uuid4().hex[:6]}"
    api.client.get(route)
    rows = _log_rows(api, route=route)
    assert [(r["status"], r["action"], r["key_id"]) for r in rows] == [(404, "unmatched", None)]

    before = len(api.store.access_log())
    assert api.client.get("/v1/assessments").status_code == 401  # no key
    assert api.client.get("/v1/assessments", headers={"Authorization": "Bearer cr_nope_nope"}).status_code == 401
    rows = api.store.access_log()[before:]
    assert [(r["key_id"], r["action"], r["status"], r["route"]) for r in rows] == [
        (None, "list", 401, "/v1/assessments"), (None, "list", 401, "/v1/assessments")]

    sub_id = api.keys["submitter"].split("_")[1]
    created = api.post_patient(load_sample("uncomplicated")).json()
    r = api.client.post(f"/v1/assessments/{created['id']}/signoff", json={"action": "approve"}, headers=api.headers("submitter"))
    assert r.status_code == 403
    row = _log_rows(api, key_id=sub_id, status=403)[-1]
    assert (row["action"], row["site_id"], row["assessment_id"]) == ("signoff", "pharmacy-a", created["id"])

    r = api.client.post("/v1/assessments", content=b'{"age": 30,', headers={**api.headers("submitter"), "Content-Type": "application/json"})
    assert r.status_code == 400
    assert _log_rows(api, key_id=sub_id, status=400)[-1]["action"] == "create"

    limited = api_factory(rate_limit=1, rate_window=3600)
    key = limited.store.create_key("limited", "submitter", "pharmacy-a")
    limited.client.get("/v1/assessments", headers=_auth(key))
    assert limited.client.get("/v1/assessments", headers=_auth(key)).status_code == 429
    assert _log_rows(api, key_id=key.split("_")[1])[-1]["status"] == 429


def test_a_list_read_records_the_ids_it_returned(api):
    created = api.post_patient(load_sample("uncomplicated")).json()["id"]
    page = api.client.get("/v1/assessments", params={"page_size": 3}, headers=api.headers("admin")).json()
    row = _log_rows(api, key_id=api.keys["admin"].split("_")[1], action="list")[-1]
    assert row["ids"] == [i["id"] for i in page["items"]] and len(row["ids"]) == 3
    # And each listed assessment's own record shows that list read among its accesses.
    assert "list" in [r["action"] for r in api.store.access_log(row["ids"][0])]
    assert created  # (created first, so the page is not empty)


def test_a_retry_with_the_same_idempotency_key_returns_the_same_assessment(api):
    idem = {"Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
    patient = load_sample("warfarin")
    first = api.client.post("/v1/assessments", json=patient, headers={**api.headers("submitter"), **idem})
    again = api.client.post("/v1/assessments", json=patient, headers={**api.headers("submitter"), **idem})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    total = api.client.get("/v1/assessments", params={"page_size": 100}, headers=api.headers("admin")).json()["items"]
    assert [i["id"] for i in total].count(first.json()["id"]) == 1
    # The same key with another patient is refused, naming the header; nothing new is stored.
    other = api.client.post("/v1/assessments", json=load_sample("uncomplicated"), headers={**api.headers("submitter"), **idem})
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    # Another API key's use of the same Idempotency-Key is its own.
    mine = api.client.post("/v1/assessments", json=patient, headers={**api.headers("prescriber"), **idem})
    assert mine.status_code == 201 and mine.json()["id"] != first.json()["id"]


def test_an_invalid_body_does_not_use_up_the_idempotency_key(api):
    idem = {"Idempotency-Key": f"fix-{uuid.uuid4().hex}"}
    bad = api.client.post("/v1/assessments", json=make_patient(age=-3), headers={**api.headers("submitter"), **idem})
    assert bad.status_code == 422
    good = api.client.post("/v1/assessments", json=load_sample("uncomplicated"), headers={**api.headers("submitter"), **idem})
    assert good.status_code == 201


def test_idempotency_key_on_a_deterministic_request(api):
    idem = {"Idempotency-Key": f"det-{uuid.uuid4().hex}"}
    first = api.post_patient(load_sample("methotrexate"), mode="deterministic")
    r1 = api.client.post("/v1/assessments", json=load_sample("methotrexate"), params={"mode": "deterministic"},
                         headers={**api.headers("submitter"), **idem})
    r2 = api.client.post("/v1/assessments", json=load_sample("methotrexate"), params={"mode": "deterministic"},
                         headers={**api.headers("submitter"), **idem})
    assert r1.status_code == r2.status_code == 200 and r1.json() == r2.json() == first.json()
    full = api.client.post("/v1/assessments", json=load_sample("methotrexate"), headers={**api.headers("submitter"), **idem})
    assert full.status_code == 422  # the mode is part of what the key stands for


def test_fhir_reads_are_on_the_access_log_by_name(api):
    created = api.post_patient(load_sample("uncomplicated")).json()
    before = len(api.store.access_log())
    assert api.client.get(f"/v1/assessments/{created['id']}/fhir", headers=api.headers("submitter")).status_code == 200
    assert api.client.get("/v1/protocols/uti-cystitis/questionnaire", headers=api.headers("submitter")).status_code == 200
    rows = api.store.access_log()[before:]
    assert [(r["action"], r["status"], r["assessment_id"]) for r in rows] == [
        ("read_fhir", 200, created["id"]), ("read_questionnaire", 200, None)]
