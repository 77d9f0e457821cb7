"""A scripted EHR for the CDS Hooks tests: its signing keys and JWTs, its FHIR server (a tiny HTTP
server on 127.0.0.1), prefetch built from patient records, and the client that calls clinreason.
The fixtures are in conftest.py; HL7's examples come from `hl7_resource` (tests/conftest.py)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fhir_bundles import bundle_of

from clinreason.cds_hooks.models import CdsResponse, Discovery
from clinreason.config import Settings

ISSUER = "https://ehr.example.org"
SITE = "pharmacy-cds"


# --- the EHR's keys and JWTs -----------------------------------------------------------------
class Keys:
    def __init__(self) -> None:
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other = ec.generate_private_key(ec.SECP384R1())  # not the EHR's: signs forged tokens

    def jwks(self) -> dict[str, Any]:
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        return {"keys": [{**ec_jwk, "kid": "ehr-ec", "alg": "ES384", "use": "sig"}, {**rsa_jwk, "kid": "ehr-rsa", "alg": "RS384", "use": "sig"}]}





class Ehr:
    """Signs the JWT of each call, as a CDS Client does (a fresh jti every time)."""

    def __init__(self, keys: Keys, base: str):
        self.keys, self.base = keys, base.rstrip("/")

    def token(self, service: str = "", *, aud: str | list[str] | None = None, alg: str = "ES384", key: Any = None, kid: str | None = None,
              iss: str = ISSUER, lifetime: int = 120, iat: float | None = None, jti: str | None = None,
              headers: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> str:
        now = time.time() if iat is None else iat
        claims = {"iss": iss, "aud": aud if aud is not None else f"{self.base}/cds-services/{service}", "iat": int(now),
                  "exp": int(now + lifetime), "jti": jti or str(uuid.uuid4()), "tenant": "tenant-1"}
        for name in drop:
            claims.pop(name)
        signer = key or (self.keys.rsa if alg.startswith("RS") else self.keys.ec)
        return jwt.encode(claims, signer, algorithm=alg, headers={"kid": kid or ("ehr-rsa" if alg.startswith("RS") else "ehr-ec"),
                                                                   **(headers or {})})

    def auth(self, service: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(service, **kw)}"}


# --- records and hook requests ----------------------------------------------------------------
def searchset(resources: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A prefetch value: the spec's null when there is nothing."""
    if not resources:
        return None
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"http://ehr.example.org/fhir/{r['resourceType']}/{r.get('id')}", "resource": r,
                       "search": {"mode": "match"}} for r in resources]}


def record(patient_json: dict[str, Any], *extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources an EHR holds for a patient JSON (Patient/p1, its medications, allergies, questionnaire answers)."""
    resources = [e["resource"] for e in bundle_of(patient_json, today=date.today())["entry"]]
    return [*resources, *extra]


def prefetch_of(resources: list[dict[str, Any]], keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The prefetch a CDS Client sends for the services' templates (all keys, or only `keys`)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    out = {
        "patient": (by_type.get("Patient") or [None])[0],
        "medicationStatements": searchset(by_type.get("MedicationStatement", [])),
        "medicationRequests": searchset(by_type.get("MedicationRequest", [])),
        "allergies": searchset(by_type.get("AllergyIntolerance", [])),
        "conditions": searchset(by_type.get("Condition", [])),
        "observations": searchset(by_type.get("Observation", [])),
        "questionnaireResponse": searchset(by_type.get("QuestionnaireResponse", [])),
    }
    return out if keys is None else {k: v for k, v in out.items() if k in keys}


def draft(order_id: str, text: str, patient: str = "Patient/p1", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": order_id, "status": "draft", "intent": "order",
            "medicationCodeableConcept": {"text": text}, "subject": {"reference": patient}, **extra}


def hook_request(hook: str, prefetch: dict[str, Any] | None, orders: list[dict[str, Any]] | None = None,
                 selections: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/rph-1", "patientId": "p1"}
    if hook != "patient-view":
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o} for o in orders or []]}
    if hook == "order-select":
        context["selections"] = selections or [f"MedicationRequest/{o['id']}" for o in orders or []]
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, **extra}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


class EhrClient:
    """The scripted CDS Client: discovery, hook calls and feedback, every answer checked against the spec's models."""

    def __init__(self, http: Any, ehr: Ehr):
        self.http, self.ehr = http, ehr

    def discover(self) -> Discovery:
        r = self.http.get("/cds-services")
        assert r.status_code == 200, r.text
        return Discovery.model_validate(r.json())

    def post(self, service: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.http.post(f"/cds-services/{service}", json=body, headers=self.ehr.auth(service) if headers is None else headers)

    def call(self, service: str, body: dict[str, Any]) -> CdsResponse:
        r = self.post(service, body)
        assert r.status_code == 200, r.text
        assert set(r.json()) <= {"cards", "systemActions"}
        return CdsResponse.model_validate(r.json())

    def feedback(self, service: str, items: list[dict[str, Any]], headers: dict[str, str] | None = None) -> Any:
        return self.http.post(f"/cds-services/{service}/feedback", json={"feedback": items},
                              headers=self.ehr.auth(service) if headers is None else headers)


def cds_settings(keys: Keys, **overrides: Any) -> Settings:
    issuers = {ISSUER: {"jwks": keys.jwks(), "site": SITE, "locale_code": "CA-ON"}}
    return Settings(**{"cds_hooks_issuers": issuers, **overrides})











# --- the EHR's FHIR server ---------------------------------------------------------------------
class FhirServer:
    """Answers GET {base}/{relative URL} from a table, logging each request (path and Authorization)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, Any]] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = httpx.URL(self.path).raw_path.decode()
                server.requests.append((path, self.headers.get("Authorization")))
                status, body = server.routes.get(path, (404, {"resourceType": "OperationOutcome", "issue": []}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, relative: str, body: Any, status: int = 200) -> None:
        """`relative` as the service asks for it (templates rendered; query as httpx encodes it)."""
        url = httpx.URL(f"{self.base}/{relative}")
        self.routes[url.raw_path.decode()] = (status, body)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
