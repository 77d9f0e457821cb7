"""The EHR's JWT (each way a token can be wrong is a 401), CORS on /cds-services only, and malformed
hook requests (400 naming the field, never a 500)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cds_ehr import (
    ISSUER,
    EhrClient,
    cds_settings,
    draft,
    hook_request,
    prefetch_of,
    record,
)
from fastapi.testclient import TestClient

from clinreason.api.app import create_app
from clinreason.config import Settings
from clinreason.samples import load_sample

SELECT = "uti-cystitis-order-select"


@pytest.fixture(scope="module")
def body():
    return hook_request("order-select", prefetch_of(record(load_sample("methotrexate"))), [draft("rx1", "Septra DS")])


def test_a_valid_es384_and_rs384_token_is_accepted(client, ehr, body):
    assert client.post(SELECT, body, ehr.auth(SELECT)).status_code == 200
    assert client.post(SELECT, body, ehr.auth(SELECT, alg="RS384")).status_code == 200
    assert client.post(SELECT, body, ehr.auth(SELECT, aud=["https://elsewhere", f"{ehr.base}/cds-services/{SELECT}"])).status_code == 200


def _none_token(ehr) -> str:
    claims = {"iss": ISSUER, "aud": f"{ehr.base}/cds-services/{SELECT}", "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "n1"}
    return jwt.encode(claims, None, algorithm="none", headers={"kid": "ehr-ec"})


def _hs_token(ehr, keys) -> str:
    # The classic confusion attack: HMAC keyed with the EHR's public key. PyJWT refuses to sign it, so by hand.
    from cryptography.hazmat.primitives import serialization

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")
    secret = keys.ec.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"iss": ISSUER, "aud": f"{ehr.base}/cds-services/{SELECT}", "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "h1"}
    signing = b64(json.dumps({"alg": "HS384", "typ": "JWT", "kid": "ehr-ec"}).encode()) + b"." + b64(json.dumps(claims).encode())
    return (signing + b"." + b64(hmac.new(secret, signing, hashlib.sha384).digest())).decode()


@pytest.mark.parametrize("case, message", [
    ("no header", "send Authorization"),
    ("not a jwt", "not a JWT"),
    ("expired", "expired"),
    ("wrong aud", "Audience"),
    ("feedback aud on the service", "Audience"),
    ("unknown iss", "not a configured CDS Hooks client"),
    ("bad signature", "Signature verification failed"),
    ("alg none", "alg 'none'"),
    ("alg HS384", "alg 'HS384'"),
    ("unknown kid", "no key 'other-kid'"),
    ("no jti", 'missing the "jti" claim'),
    ("too long-lived", "lives longer"),
    ("issued in the future", "not yet valid"),
    ("jku not allowlisted", "not on this issuer's allowlist"),
])
def test_a_bad_token_is_401(client, ehr, keys, body, case, message):
    token = {
        "no header": None,
        "not a jwt": "abc.def",
        "expired": lambda: ehr.token(SELECT, iat=time.time() - 600, lifetime=120),
        "wrong aud": lambda: ehr.token(aud=f"{ehr.base}/cds-services/uti-cystitis-order-sign"),
        "feedback aud on the service": lambda: ehr.token(aud=f"{ehr.base}/cds-services/{SELECT}/feedback"),
        "unknown iss": lambda: ehr.token(SELECT, iss="https://rogue.example.org"),
        "bad signature": lambda: ehr.token(SELECT, key=keys.other),
        "alg none": lambda: _none_token(ehr),
        "alg HS384": lambda: _hs_token(ehr, keys),
        "unknown kid": lambda: ehr.token(SELECT, kid="other-kid"),
        "no jti": lambda: ehr.token(SELECT, drop=("jti",)),
        "too long-lived": lambda: ehr.token(SELECT, lifetime=7200),
        "issued in the future": lambda: ehr.token(SELECT, iat=time.time() + 300),
        "jku not allowlisted": lambda: ehr.token(SELECT, headers={"jku": "https://rogue.example.org/jwks"}),
    }[case]
    token = token() if callable(token) else token
    r = client.post(SELECT, body, {} if token is None else {"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer") and message in r.json()["detail"]


def test_a_replayed_token_is_401(client, ehr, body):
    headers = ehr.auth(SELECT)
    assert client.post(SELECT, body, headers).status_code == 200
    r = client.post(SELECT, body, headers)
    assert r.status_code == 401 and "replayed" in r.json()["detail"]


def test_feedback_accepts_the_service_or_feedback_url_as_audience(client, ehr):
    url = f"{ehr.base}/cds-services/{SELECT}"
    for aud in (url, f"{url}/feedback"):
        r = client.feedback(SELECT, [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-12-01T10:00:00Z"}], ehr.auth("", aud=aud))
        assert r.status_code == 422  # authenticated; the card is unknown


def test_no_configured_issuer_means_401_but_discovery_is_public(offline_pipeline, ehr, body):
    with TestClient(create_app(Settings(cds_hooks_issuers={}), pipeline=offline_pipeline)) as http:
        c = EhrClient(http, ehr)
        assert c.discover().services
        r = c.post(SELECT, body)
        assert r.status_code == 401 and "no CDS Hooks client is configured" in r.json()["detail"]


def test_keys_from_a_jwks_url(offline_pipeline, keys, ehr, body, fhir_server):
    fhir_server.serve("jwks", keys.jwks())
    settings = cds_settings(keys, cds_hooks_issuers={ISSUER: {"jwks_url": f"{fhir_server.base}/jwks"}})
    with TestClient(create_app(settings, pipeline=offline_pipeline)) as http:
        c = EhrClient(http, ehr)
        assert c.post(SELECT, body).status_code == 200
        assert c.post(SELECT, body).status_code == 200  # the set is cached: fetched once
        assert [p for p, _ in fhir_server.requests] == ["/fhir/jwks"]
        assert c.post(SELECT, body, ehr.auth(SELECT, key=keys.other)).status_code == 401


# --- CORS -------------------------------------------------------------------------------------
def test_cors_preflight_and_headers_on_cds_services_only(app_client, ehr, body):
    preflight = app_client.options(f"/cds-services/{SELECT}", headers={
        "Origin": "https://ehr-app.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    h = preflight.headers
    assert h["access-control-allow-origin"] == "*"
    assert {"Authorization", "Content-Type"} <= {x.strip() for x in h["access-control-allow-headers"].split(",")}
    assert "POST" in h["access-control-allow-methods"] and h["access-control-expose-headers"]
    # Answers carry the headers, errors too (a browser can read why it was refused).
    refused = app_client.post(f"/cds-services/{SELECT}", json=body, headers={"Origin": "https://ehr-app.example.org"})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"
    assert app_client.get("/cds-services", headers={"Origin": "https://x.example"}).headers["access-control-allow-origin"] == "*"
    # The rest of the API is not opened to browsers.
    other = app_client.options("/v1/assessments", headers={"Origin": "https://ehr-app.example.org", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers


def test_cors_with_an_origin_allowlist(offline_pipeline, keys):
    settings = cds_settings(keys, cds_hooks_cors_origins=["https://ehr-app.example.org"])
    with TestClient(create_app(settings, pipeline=offline_pipeline)) as http:
        ok = http.options("/cds-services", headers={"Origin": "https://ehr-app.example.org", "Access-Control-Request-Method": "GET"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://ehr-app.example.org"
        no = http.options("/cds-services", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        assert no.status_code == 403 and "access-control-allow-origin" not in no.headers


# --- malformed requests -----------------------------------------------------------------------
def _with(body, **changes):
    out = json.loads(json.dumps(body))
    for path, value in changes.items():
        node = out
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        if value is ...:
            node.pop(leaf)
        else:
            node[leaf] = value
    return out


@pytest.mark.parametrize("change, field", [
    ({"hook": "patient-view"}, "hook"),
    ({"hookInstance": ...}, "hookInstance"),
    ({"context": "p1"}, "context"),
    ({"context__patientId": ...}, "context.patientId"),
    ({"context__patientId": "../../etc"}, "context.patientId"),
    ({"context__selections": []}, "context.selections"),
    ({"context__draftOrders": {"resourceType": "Patient"}}, "context.draftOrders.resourceType"),
    ({"prefetch": ["x"]}, "prefetch"),
    ({"fhirServer": "ftp://x"}, "fhirServer"),
    ({"fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 1, "scope": "s", "subject": "c"}}, "(root)"),
    ({"prefetch__patient": {"resourceType": "Patient", "id": "someone-else"}}, "prefetch.patient.id"),
])
def test_a_malformed_hook_request_is_400_naming_the_field(client, body, change, field):
    r = client.post(SELECT, _with(body, **change))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]]


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"hook": 1}', b"{" * 100 + b"}" * 100, b'{"a": NaN}',
                                 b'{"hook": "order-select", "hook": "patient-view"}'])
def test_bodies_that_are_not_hook_requests_are_4xx_never_500(app_client, ehr, raw):
    r = app_client.post(f"/cds-services/{SELECT}", content=raw, headers={**ehr.auth(SELECT), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text


def test_the_prefetch_bundle_the_intake_refuses_is_not_a_500(client, body):
    broken = _with(body, prefetch__medicationStatements={"resourceType": "Bundle", "type": "searchset",
                                                         "entry": [{"resource": {"resourceType": "MedicationStatement", "status": 7}}]})
    r = client.post(SELECT, broken)
    assert r.status_code == 200 and r.json()["cards"][0]["indicator"] == "warning"  # not assessed: the field is named
    assert "MedicationStatement" in r.json()["cards"][0]["detail"]


def test_unknown_service_is_404(client, body):
    assert client.post("no-such-service", body).status_code == 404
