"""CDS Hooks latency: order-select (deterministic checks) and patient-view (the full offline
assessment, stored and linked), in a warm in-process app and over HTTP.

    python benchmarks/bench_cds_hooks.py [--requests 200]

In-process: the app under Starlette's TestClient (the whole ASGI stack: CORS, body limit, metrics,
access log, JWT check, prefetch, FHIR intake, cards, the store), warmed first. Over HTTP:
`clinreason serve` on a free loopback port (own data dir), one request at a time from httpx.
Every call carries a freshly signed ES384 JWT (signed before the clock starts). Reported: p50 and
p95 latency, CPU per request (this process in-process; the server's processes over HTTP), and the
load average before and after; the spec expects an answer within about 500 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import jwt
from bench_api import cpu_seconds, free_port, server_pids
from cryptography.hazmat.primitives.asymmetric import ec
from revisions import ROOT

sys.path.insert(0, str(ROOT / "tests"))
from fhir_bundles import bundle_of  # the tests' FHIR record builder

from clinreason.samples import load_sample

ISSUER = "https://ehr.bench.example"
SAMPLES = ("methotrexate", "raas-nitrofurantoin-allergy", "warfarin", "uncomplicated", "red-flags-older-adult", "g6pd")
ORDER = "Septra DS 800/160 mg 1 tab BID x 3 days"


def prefetch(name: str) -> dict[str, Any]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in bundle_of(load_sample(name), today=date.today())["entry"]:
        by_type.setdefault(e["resource"]["resourceType"], []).append(e["resource"])

    def search(kind: str) -> dict[str, Any] | None:
        found = by_type.get(kind, [])
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in found]} if found else None
    return {"patient": by_type["Patient"][0], "medicationStatements": search("MedicationStatement"), "medicationRequests": None,
            "allergies": search("AllergyIntolerance"), "conditions": None, "observations": search("Observation"),
            "questionnaireResponse": search("QuestionnaireResponse")}


def body(hook: str, name: str) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/bench", "patientId": "p1"}
    if hook == "order-select":
        order = {"resourceType": "MedicationRequest", "id": "rx1", "status": "draft", "intent": "order",
                 "medicationCodeableConcept": {"text": ORDER}, "subject": {"reference": "Patient/p1"}}
        context |= {"draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]},
                    "selections": ["MedicationRequest/rx1"]}
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": prefetch(name)}


class Signer:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        self.issuers = {ISSUER: {"jwks": {"keys": [{**public, "kid": "bench", "alg": "ES384"}]}, "locale_code": "CA-ON"}}

    def tokens(self, url: str, n: int) -> list[str]:
        now = int(time.time())
        return [jwt.encode({"iss": ISSUER, "aud": url, "iat": now, "exp": now + 600, "jti": str(uuid.uuid4())}, self.key,
                           algorithm="ES384", headers={"kid": "bench"}) for _ in range(n)]


def summary(latencies: list[float], cpu_ms: float) -> str:
    s = sorted(latencies)
    return f"p50 {statistics.median(s):6.1f} ms  p95 {s[int(0.95 * (len(s) - 1))]:6.1f} ms  CPU {cpu_ms:5.1f} ms/req"


def run(post: Any, base: str, signer: Signer, hook: str, n: int, cpu: Any) -> tuple[list[float], float]:
    service = f"uti-cystitis-{hook}"
    tokens = signer.tokens(f"{base}/cds-services/{service}", n)
    bodies = [body(hook, SAMPLES[i % len(SAMPLES)]) for i in range(n)]
    latencies: list[float] = []
    c0 = cpu()
    for token, b in zip(tokens, bodies, strict=True):
        t0 = time.perf_counter()
        r = post(f"/cds-services/{service}", content=json.dumps(b), headers={"Authorization": f"Bearer {token}",
                                                                             "Content-Type": "application/json"})
        latencies.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{service}: {r.status_code} {r.text[:300]}")
    return latencies, (cpu() - c0) / n * 1000


def in_process(signer: Signer, n: int) -> dict[str, str]:
    from fastapi.testclient import TestClient

    from clinreason.api.app import create_app
    from clinreason.config import Settings

    out = {}
    with TestClient(create_app(Settings(cds_hooks_issuers=signer.issuers, rate_limit=10**8))) as client:
        for hook in ("order-select", "patient-view"):
            run(client.post, "http://testserver", signer, hook, 20, time.process_time)  # warm
            lat, cpu = run(client.post, "http://testserver", signer, hook, n, time.process_time)
            out[hook] = summary(lat, cpu)
    return out


def over_http(signer: Signer, n: int) -> dict[str, str]:
    data_dir = Path(os.environ.get("CLINREASON_DATA_DIR") or tempfile.mkdtemp(prefix="clinreason-bench-cds-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CLINREASON_DATA_DIR": str(data_dir), "CLINREASON_CDS_HOOKS_ISSUERS": json.dumps(signer.issuers),
           "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "clinreason.cli", "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.2)
        pids = server_pids(proc.pid)
        out = {}
        with httpx.Client(base_url=url, timeout=30) as client:
            for hook in ("order-select", "patient-view"):
                run(client.post, url, signer, hook, 20, lambda: cpu_seconds(pids))
                lat, cpu = run(client.post, url, signer, hook, n, lambda: cpu_seconds(pids))
                out[hook] = summary(lat, cpu)
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    signer = Signer()
    load_before = os.getloadavg()
    results = {"in-process": in_process(signer, args.requests), "HTTP": over_http(signer, args.requests)}
    load_after = os.getloadavg()
    print(f"CDS Hooks latency, {args.requests} sequential requests per hook after 20 warm-up, {os.cpu_count()} cores; "
          f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    for where, by_hook in results.items():
        for hook, line in by_hook.items():
            print(f"  {where:10s} {hook:13s} {line}")


if __name__ == "__main__":
    main()
