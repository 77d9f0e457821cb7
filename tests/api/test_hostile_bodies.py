"""Hostile requests (issue 15): each is a 4xx problem naming what is wrong, never a 500 or a dropped
connection, and nothing is stored. In-process through the ASGI app, and the header cap and one deep
body against a real `clinreason serve`."""

from __future__ import annotations

import contextlib
import json
import select
import socket

import httpx
import pytest
from patients import make_patient
from test_server import Server, _key

from clinreason.api.body import MAX_DEPTH, MAX_INT_DIGITS
from clinreason.samples import load_sample

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}

DEEP_ARRAY = b"[" * 1500
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
LONG_INT = b"9" * 5000


def _total(api) -> int:
    return api.client.get("/v1/assessments", headers=api.headers("admin")).json()["total"]


def _post(api, body: bytes, role: str | None = "submitter", headers: dict[str, str] | None = None, url: str = "/v1/assessments"):
    auth = api.headers(role) if role else {}
    return api.client.post(url, content=body, headers={**JSON, **auth, **(headers or {})})


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["title"]
    return body


def _patient_with(raw_field: str, raw_value: str) -> bytes:
    """The baseline patient as JSON text, its `raw_field` replaced by `raw_value` spliced in verbatim."""
    patient = make_patient()
    patient.pop(raw_field, None)
    text = json.dumps(patient)
    return (text[:-1] + f', "{raw_field}": {raw_value}}}').encode()


@pytest.mark.parametrize(("body", "depth"), [(DEEP_ARRAY, 1500), (DEEP_OBJECT, 5000)], ids=["array-1500", "object-5000"])
def test_deep_nesting_is_400_without_parsing(api, body, depth):
    before = _total(api)
    problem = _problem(_post(api, body), 400)
    assert problem["type"] == "urn:clinreason:problem:malformed-json"
    assert f"{depth} deep" in problem["detail"] and str(MAX_DEPTH) in problem["detail"]
    assert problem["errors"] == [{"field": "(root)", "message": f"nested {depth} levels deep (limit {MAX_DEPTH})"}]
    assert _total(api) == before


def test_nesting_within_the_limit_is_parsed(api):
    body = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH  # parsed, then refused as a patient (not an object)
    r = _post(api, body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "(root)"


def test_an_integer_of_5000_digits_is_400_naming_the_field(api):
    before = _total(api)
    problem = _problem(_post(api, _patient_with("age", LONG_INT.decode())), 400)
    assert problem["errors"] == [{"field": "age", "message": f"an integer of 5000 digits; at most {MAX_INT_DIGITS} are accepted"}]
    problem = _problem(_post(api, LONG_INT), 400)  # the whole body
    assert problem["errors"][0]["field"] == "(root)"
    assert _total(api) == before


def test_duplicate_keys_in_a_patient_are_400_naming_the_key(api):
    before = _total(api)
    text = json.dumps(make_patient()).replace('"fever": false', '"fever": true, "fever": false')
    assert text.count('"fever"') == 2
    problem = _problem(_post(api, text.encode()), 400)
    assert problem["errors"] == [{"field": "red_flags.fever", "message": 'duplicate key "fever": a key may appear only once in an object'}]
    assert "fever" in problem["detail"]
    assert _total(api) == before


def test_a_repeated_action_in_a_signoff_is_400_and_decides_nothing(api):
    created = api.post_patient(load_sample("warfarin")).json()
    assert created["status"] == "awaiting_signoff"
    url = f"/v1/assessments/{created['id']}/signoff"
    problem = _problem(_post(api, b'{"action":"reject","action":"approve"}', "prescriber", url=url), 400)
    assert problem["errors"] == [{"field": "action", "message": 'duplicate key "action": a key may appear only once in an object'}]
    got = api.client.get(f"/v1/assessments/{created['id']}", headers=api.headers("prescriber")).json()
    assert got["status"] == "awaiting_signoff" and got["signoff"] is None
    # Field errors of a well-formed sign-off are still 422 per field, as before.
    r = _post(api, b'{"action": "bless", "extra": 1}', "prescriber", url=url)
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"action", "extra"}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_400_saying_json_has_none(api, constant):
    before = _total(api)
    problem = _problem(_post(api, _patient_with("age", constant)), 400)
    [error] = problem["errors"]
    assert error["field"] == "age" and "JSON has no NaN or Infinity" in error["message"] and constant in error["message"]
    assert _total(api) == before


def test_numbers_out_of_range_and_lone_surrogates_are_400(api):
    problem = _problem(_post(api, _patient_with("age", "1e400")), 400)
    assert problem["errors"][0]["field"] == "age" and "out of range" in problem["errors"][0]["message"]
    problem = _problem(_post(api, _patient_with("notes", '"\\ud800"')), 400)
    assert problem["errors"][0]["field"] == "notes" and "surrogate" in problem["errors"][0]["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", None])
def test_a_body_not_declared_as_json_is_415(api, content_type):
    headers = {**api.headers("submitter"), **({"content-type": content_type} if content_type else {})}
    r = api.client.post("/v1/assessments", content=json.dumps(make_patient()).encode(), headers=headers)
    problem = _problem(r, 415)
    assert problem["type"] == "urn:clinreason:problem:unsupported-media-type" and "application/json" in problem["detail"]
    for ok in ("application/json; charset=UTF-8", "application/merge-patch+json"):
        assert api.client.post("/v1/assessments", params={"mode": "deterministic"}, content=json.dumps(make_patient()).encode(),
                               headers={**api.headers("submitter"), "content-type": ok}).status_code == 200


def test_signoff_body_not_declared_as_json_is_415(api):
    created = api.post_patient(load_sample("warfarin")).json()
    r = api.client.post(f"/v1/assessments/{created['id']}/signoff", content=b"action=approve",
                        headers={**api.headers("prescriber"), "content-type": "application/x-www-form-urlencoded"})
    _problem(r, 415)


HOSTILE = {"array-1500": DEEP_ARRAY, "object-5000": DEEP_OBJECT, "int-5000": LONG_INT,
           "duplicate-fever": b'{"red_flags": {"fever": true, "fever": false}}', "nan": b'{"age": NaN}'}


@pytest.mark.parametrize("name", HOSTILE)
def test_authentication_comes_before_the_body(api, name):
    """Without a key, or with one whose role may not sign off, the body is never parsed."""
    problem = _problem(_post(api, HOSTILE[name], role=None), 401)
    assert api.client.post("/v1/assessments", content=HOSTILE[name], headers={"content-type": "text/plain"}).status_code == 401
    created = api.post_patient(load_sample("warfarin")).json()
    url = f"/v1/assessments/{created['id']}/signoff"
    assert _post(api, HOSTILE[name], role=None, url=url).status_code == 401
    assert _post(api, HOSTILE[name], role="submitter", url=url).status_code == 403
    assert problem["type"] == "urn:clinreason:problem:unauthorized"


def test_headers_over_the_limit_are_431_in_the_app(api):
    """The app's own check, for servers that do not cap heads (uvicorn --factory with httptools)."""
    r = api.client.get("/v1/assessments", headers={"Authorization": "Bearer " + "a" * 100_000})
    problem = _problem(r, 431)
    assert "'authorization'" in problem["detail"] and "16384" in problem["detail"]
    assert api.client.get("/healthz", headers={"X-Padding": "p" * 100_000}).status_code == 431


def test_405_keeps_the_allow_header(api):
    r = api.client.put("/v1/assessments", headers=api.headers("submitter"))
    _problem(r, 405)
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "POST"}  # every route on the path, not only the first
    r = api.client.delete("/healthz")
    assert r.status_code == 405 and "GET" in r.headers["allow"]


def test_openapi_declares_security_and_every_status(api):
    spec = api.client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"]}
    assert spec["components"]["securitySchemes"]["apiKeyHeader"]["name"] == "X-API-Key"
    create = spec["paths"]["/v1/assessments"]["post"]
    assert {"200", "201", "400", "401", "403", "405", "409", "413", "415", "422", "429", "431"} <= set(create["responses"])
    assert create["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    assert create["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Assessment"}
    signoff = spec["paths"]["/v1/assessments/{assessment_id}/signoff"]["post"]
    assert {"400", "404", "409", "413", "415", "422"} <= set(signoff["responses"])
    assert signoff["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SignoffRequest"}
    assert "action" in spec["components"]["schemas"]["SignoffRequest"]["properties"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op["responses"]["405"]["headers"]["Allow"]["required"] is True, (method, path)
            assert "431" in op["responses"], (method, path)
            assert ("security" in op) == path.startswith("/v1/"), (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


# --- against a real `clinreason serve` -----------------------------------------------------------

@pytest.fixture(scope="module")
def served(kb_index):
    key = _key("submitter")
    server = Server()
    try:
        yield server, key
    finally:
        server.stop()


def test_a_50_mb_authorization_header_is_refused_by_the_server(served):
    server, _ = served
    size = 50 * 1024 * 1024
    # Raw socket: the answer arrives while the head is still being sent (far short of 50 MB),
    # i.e. the server refused it without reading it all. (Bytes, not seconds: never time on a loaded machine.)
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=120) as s:
        s.sendall(b"GET /v1/assessments HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ")
        s.setblocking(False)
        chunk = b"a" * 65536
        while sent < size and not answer:
            readable, writable, _ = select.select([s], [s], [], 120)
            if readable:
                answer = s.recv(65536)
                break
            if writable:
                try:
                    sent += s.send(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
        if not answer:  # not answered early: finish the head and take whatever answer comes
            s.settimeout(300)
            with contextlib.suppress(OSError):
                s.sendall(b"\r\n\r\n")
            with contextlib.suppress(OSError):
                answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < size // 2, f"the server read {sent} bytes of the head before answering"
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["type"] == "urn:clinreason:problem:headers-too-large"
    # An ordinary client gets the 431 too, and the server carries on.
    r = httpx.get(f"{server.url}/v1/assessments", headers={"Authorization": "Bearer " + "a" * size}, timeout=300)
    assert r.status_code == 431 and r.json()["status"] == 431
    assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200


def test_a_deep_body_is_400_from_the_server(served):
    server, key = served
    auth = {"Authorization": f"Bearer {key}", **JSON}
    before = httpx.get(f"{server.url}/v1/assessments", headers=auth, timeout=60).json()["total"]
    r = httpx.post(f"{server.url}/v1/assessments", content=DEEP_ARRAY, headers=auth, timeout=60)
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM, r.text[:300]
    assert r.json()["errors"] == [{"field": "(root)", "message": f"nested 1500 levels deep (limit {MAX_DEPTH})"}]
    r = httpx.post(f"{server.url}/v1/assessments", content=DEEP_OBJECT, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 401  # no key: not parsed
    assert httpx.get(f"{server.url}/v1/assessments", headers=auth, timeout=60).json()["total"] == before


# --- /docs offline ---------------------------------------------------------------------------------

def test_docs_and_their_assets_are_served_locally(api, monkeypatch):
    """/docs (Swagger UI) and /redoc reference only this server's own URLs, and each answers 200:
    nothing is fetched from a CDN, so the pages work on a network without internet access."""
    import re

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access: {args}")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    expected_types = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}
    for page in ("/docs", "/redoc"):
        r = api.client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text, r.text
        urls = set(re.findall(r'(?:src|href|spec-url)="([^"]+)"', r.text)) | set(re.findall(r"url: '([^']+)'", r.text))
        assert len(urls) >= 3, urls  # script, favicon, spec (and the stylesheet for Swagger UI)
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = api.client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
            suffix = url[url.rfind("."):]
            assert expected_types.get(suffix, "") in asset.headers["content-type"], (url, asset.headers["content-type"])


def test_a_number_without_a_fraction_is_an_integer(api):
    """JSON has one number type: 30.0 is the integer 30 (as JSON Schema, and so schemathesis, count it)."""
    for body, status in ((_patient_with("age", "30.0"), 200), (_patient_with("age", "3e1"), 200), (_patient_with("age", "30.5"), 422)):
        r = api.client.post("/v1/assessments", params={"mode": "deterministic"}, content=body, headers={**JSON, **api.headers("submitter")})
        assert r.status_code == status, r.text[:300]
    assert r.json()["errors"][0]["field"] == "age"


# --- the protocols `clinreason serve` runs, on a bare ASGI app ------------------------------------

async def _ok_app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(params=["HeadLimitedHttpTools", "HeadLimitedH11"])
def capped_server(request):
    """uvicorn with one of the head-limited protocols (httptools, or h11 where httptools is missing)."""
    import threading
    import time

    import uvicorn

    from clinreason.api import server as protocols

    if not hasattr(protocols, request.param):
        pytest.skip(f"{request.param}: httptools is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(_ok_app, host="127.0.0.1", port=port, log_level="error", lifespan="off",
                            http=f"clinreason.api.server:{request.param}", h11_max_incomplete_event_size=16384)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def test_the_protocols_answer_431_early_and_reset_per_request(capped_server):
    port = capped_server
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        # Two requests on one connection, 10 KB of headers each: each head is under the limit
        # though together they are over it (the count restarts with each request).
        for _ in range(2):
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 10_000 + b"\r\n\r\n")
            answer = b""
            while not answer.endswith(b"ok"):
                chunk = s.recv(65536)
                assert chunk, answer
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
        # A POST body larger than the head limit is not a head: accepted.
        s.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"b" * 100_000)
        answer = b""
        while not answer.endswith(b"ok"):
            chunk = s.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        # ... and a later request on the same connection is capped as the first would be.
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 100_000)
        assert s.recv(65536).startswith(b"HTTP/1.1 431 ")
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + b"a" * 200_000)
        answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == 431
