"""REST API: assessments, sign-off, auth, rate limits, problem+json errors, metrics.

No `from __future__ import annotations` here: FastAPI must resolve the
annotations that name closure-local dependencies at definition time.

    clinreason serve            # or: uvicorn --factory clinreason.api.app:create_app
"""


import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from clinreason.api.access import PERMISSIONS, action_for, audit_of, is_logged
from clinreason.api.body import json_body, read_json
from clinreason.api.docs import install_docs
from clinreason.api.metrics import Metrics
from clinreason.api.openapi import READINESS, body_schema
from clinreason.api.openapi import install as install_openapi
from clinreason.api.problems import ApiError, allowed_methods, problem, problem_responses
from clinreason.api.ratelimit import make_rate_limiter
from clinreason.assessment import Assessment, assess, validate
from clinreason.config import Settings, get_settings
from clinreason.errors import InvalidPatient
from clinreason.pipeline import (
    AssessmentNotFound,
    InvalidSignoff,
    NotAwaitingSignoff,
    Pipeline,
    UnacknowledgedChecks,
)
from clinreason.protocols.registry import DEFAULT_PROTOCOL, registry
from clinreason.samples import load_sample, sample_index, sample_protocol
from clinreason.store import ApiKey, IdempotencyConflict, IdempotencyInProgress

class SignoffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "approve", "comment": "Reviewed; INR check arranged."},
        {"action": "amend", "agent": "<an allowed option id>", "comment": "Patient prefers a single dose."},
    ]})
    action: Literal["approve", "amend", "reject"]
    comment: str = Field(default="", max_length=2000)
    agent: str | None = Field(default=None, description="With amend: an option id the protocol allows for this patient.")
    acknowledged: list[str] = Field(
        default_factory=list, max_length=200,
        description="Blocking checks the prescriber has checked by hand: each unrecognised entry's text (or its field, "
                    "e.g. history.meds[2]). Approval is refused with 409 until every blocking check of the plan is listed.")


class AssessmentSummary(BaseModel):
    id: str
    status: str
    decision: str
    plan: str
    created_at: str


class AssessmentPage(BaseModel):
    items: list[AssessmentSummary]
    page: int
    page_size: int
    total: int


REF = "#/components/schemas/{model}"
DETERMINISTIC = "-"  # the Idempotency-Key record of a deterministic result (which is not stored)


def _patient_body_schema() -> dict[str, Any]:
    # The body is read raw (so contradictions and unknown fields get our field errors), but documented
    # as one of the registered protocols' request schemas, with a bundled sample of each as an example.
    examples = {}
    for name in sample_index():
        examples.setdefault(sample_protocol(name), load_sample(name))
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": REF.format(model="AssessmentRequest")},
        "examples": {pid: {"summary": registry()[pid].title, "value": value} for pid, value in examples.items()}}}}}


def _with_patient_components(app: FastAPI) -> Callable[[], dict[str, Any]]:
    # The body models (read by body.py, so not known to FastAPI), security, and the statuses of every path: openapi.py.
    return install_openapi(app, (SignoffRequest,), protocols=list(registry().values()), default_protocol=DEFAULT_PROTOCOL)


class _BodyLimit:
    """Pure ASGI middleware: refuse request headers over `header_limit` bytes in total with 431
    (for servers that do not cap them; `clinreason serve` refuses them before the app sees them),
    and bodies over the limit (declared or streamed) with 413."""

    def __init__(self, app: Any, limit: int, header_limit: int | None = None):
        self.app, self.limit, self.header_limit = app, limit, header_limit

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.header_limit is not None:
            sizes = [(len(name) + len(value) + 4, name) for name, value in scope.get("headers") or []]
            if sum(size for size, _ in sizes) > self.header_limit:
                largest = max(sizes)[1].decode("latin-1")[:64]
                too_big = problem(431, "Request header fields too large",
                                  f"the headers are over {self.header_limit} bytes in all; the largest is {largest!r}", kind="headers-too-large")
                return await too_big(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            too_big = problem(413, "Request body too large", f"the limit is {self.limit} bytes", kind="body-too-large")
            return await too_big(scope, receive, send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ApiError(413, "Request body too large", f"the limit is {self.limit} bytes", "body-too-large")
            return message

        await self.app(scope, limited, send)


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()
    state: dict[str, Any] = {}
    state_lock = threading.Lock()

    def ensure_state() -> dict[str, Any]:
        """Pipeline, limiter and index, created once (at startup, or on first use
        when the server skipped the lifespan events)."""
        with state_lock:
            if not state:
                from clinreason.knowledge.retrieval import get_index

                state["pipeline"] = pipeline or Pipeline(settings)
                state["limiter"] = make_rate_limiter(settings.redis_url, settings.rate_limit, settings.rate_window)
                from clinreason.knowledge.corpus import all_scopes

                # Build or open every knowledge base now, not on the first assessment.
                state["indexes"] = [get_index(settings, scope=scope) for scope in all_scopes()]
                for spec in registry().values():
                    spec.formulary.recognizer.warm()  # the spelling index, before any misspelt entry arrives
                # Ready means a full assessment runs warm: run the samples' retrieval plans now
                # (on a fresh data dir this loads the embedding model here, not on a request).
                state["warmed"] = state["pipeline"].warm_up()
        return state

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        ensure_state()
        yield

    app = FastAPI(
        title="clinreason", version="0.1.0", lifespan=lifespan,
        description="Clinical reasoning for pharmacist prescribing protocols (`GET /v1/protocols`). Send `Authorization: Bearer <key>`; "
                    "keys are created with `clinreason keys create`. Errors are RFC 9457 problem+json.",
        docs_url=None, redoc_url=None,  # FastAPI's pages load their assets from a CDN: install_docs serves them locally
    )
    install_docs(app)
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes, header_limit=settings.max_header_bytes)  # type: ignore[arg-type]

    # --- errors --------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        status, title, detail, kind, errors, headers = exc.args
        return problem(status, title, detail, kind=kind, errors=errors, headers=headers, instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or "(body)", "message": e["msg"]} for e in exc.errors()]
        return problem(422, "Invalid input", "the request has invalid fields", kind="invalid-input", errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Keep the exception's headers; a 405's Allow lists the methods of every route on the path (RFC 9110).
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(app.router.routes, request.url.path) or headers.get("Allow", "")
        return problem(exc.status_code, str(exc.detail), headers=headers or None, instance=request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # never a bare 500 page
        return problem(500, "Internal error", "the error was logged; the request can be retried", instance=request.url.path)

    # --- metrics and timing -------------------------------------------------
    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        try:
            response = await call_next(request)
        except ApiError as exc:  # raised inside the body-limit wrapper
            response = await _api_error(request, exc)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.latency.labels(request.method, path).observe(time.perf_counter() - t0)
        if is_logged(request.url.path):
            await anyio.to_thread.run_sync(lambda: _log_request(request, getattr(route, "path", None), response.status_code))
        return response

    def _log_request(request: Request, route_path: str | None, status: int) -> None:
        audit = audit_of(request)
        path_id = (request.scope.get("path_params") or {}).get("assessment_id")
        pipe().store.log_request(action=action_for(request.method, route_path), status=status, key=audit.key,
                                 assessment_id=audit.assessment_id or path_id, method=request.method,
                                 route=route_path or request.url.path[:200], ids=audit.ids)

    # --- dependencies ---------------------------------------------------------
    def pipe() -> Pipeline:
        return ensure_state()["pipeline"]

    def authenticate(request: Request) -> ApiKey:
        header = request.headers.get("authorization", "")
        presented = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        if not presented:
            raise ApiError(401, "Missing or invalid API key", "send Authorization: Bearer <key>", "unauthorized", headers={"WWW-Authenticate": "Bearer"})
        key = pipe().store.verify_key(presented)
        if key is None:
            raise ApiError(401, "Missing or invalid API key", "the key is unknown or revoked", "unauthorized", headers={"WWW-Authenticate": "Bearer"})
        audit_of(request).key = key  # from here on, the access log names the key (403 and 429 included)
        retry = ensure_state()["limiter"].hit(key.key_id)
        if retry is not None:
            raise ApiError(429, "Rate limit exceeded", f"at most {settings.rate_limit} requests per {settings.rate_window} s per key",
                           "rate-limited", headers={"Retry-After": str(retry)})
        return key

    def role(permission: str) -> Callable[..., ApiKey]:
        def check(key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
            if permission not in PERMISSIONS[key.role]:
                raise ApiError(403, "Role not permitted", f"role {key.role!r} cannot {permission}", "forbidden")
            return key
        return check

    def not_found(assessment_id: str) -> ApiError:
        # The same answer for "no such id" and "another site's": ids cannot be probed across sites.
        return ApiError(404, "Not found", f"no assessment {assessment_id!r}", "not-found")

    def load(assessment_id: str, key: ApiKey) -> Assessment:
        try:
            return pipe().get(assessment_id, site=key.site)
        except AssessmentNotFound:
            raise not_found(assessment_id) from None

    def check_owner(assessment_id: str, key: ApiKey) -> None:
        owner = pipe().store.owner(assessment_id)
        if owner is None or (key.site is not None and owner[0] != key.site):
            raise not_found(assessment_id)

    # --- routes ---------------------------------------------------------------
    # The offline pipeline is CPU-bound: running several at once in one process
    # only makes them fight over the GIL, so each worker runs one at a time
    # (scale with --workers). LLM-backed runs mostly wait on the network.
    limiters: dict[str, anyio.CapacityLimiter] = {}

    async def in_worker_thread(fn: Callable[[], Any]) -> Any:
        if "pipeline" not in limiters:
            limiters["pipeline"] = anyio.CapacityLimiter(1 if settings.agent_backend == "rules" else 32)
        return await anyio.to_thread.run_sync(fn, limiter=limiters["pipeline"])

    # Dependencies run in the order of the parameters: the key is checked before the body is read.
    @app.post("/v1/assessments", status_code=201, response_model=Assessment, tags=["assessments"],
              openapi_extra=_patient_body_schema(),
              responses={201: {"description": "Assessed and stored (full mode)",
                               "headers": {"Location": {"description": "The stored assessment", "required": True, "schema": {"type": "string"}}}},
                         200: {"description": "Assessed, nothing stored (mode=deterministic); or the first answer again (a repeated Idempotency-Key)",
                               "model": Assessment,
                               "headers": {"Location": {"description": "The stored assessment (a repeated Idempotency-Key)", "schema": {"type": "string"}}}},
                         **problem_responses(400, 401, 403, 409, 413, 415, 422, 429, titles={
                             409: "A request with this Idempotency-Key is still running (Retry-After)",
                             422: "Invalid patient (field errors), invalid query or Idempotency-Key, or an Idempotency-Key used with another body"})},
              summary="Assess a patient (full pipeline by default)")
    async def create_assessment(request: Request, key: Annotated[ApiKey, Depends(role("create"))], request_body: Annotated[Any, Depends(_json_body)],
                                mode: Annotated[Literal["full", "deterministic"], Query()] = "full",
                                idempotency_key: Annotated[str | None, Header(
                                    min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$",  # the printable ASCII idempotent_replay accepts
                                    description="Retry safely: the same key and body return the first result (200); "
                                                "the same key with another body is refused (422).")] = None) -> Response:
        try:
            patient = validate(request_body)  # locale too: reject before waiting for a worker
        except InvalidPatient as exc:
            raise ApiError(422, "Invalid patient", f"{len(exc.errors)} field error(s)", "invalid-patient",
                           errors=[{"field": e.field, "message": e.message} for e in exc.errors]) from None
        if idempotency_key is not None:
            replay = idempotent_replay(key, idempotency_key, request_body, mode)
            if replay is not None:
                audit_of(request).assessment_id = replay.id
                return Response(replay.model_dump_json(), status_code=200, media_type="application/json",
                                headers={"Location": f"/v1/assessments/{replay.id}", "Idempotent-Replayed": "true"})
        try:
            if mode == "deterministic":
                result = assess(patient, mode="deterministic")
            else:
                result = await in_worker_thread(lambda: pipe().run(patient, submitter=key))
        except BaseException:
            if idempotency_key is not None:
                pipe().store.idempotency_release(key.key_id, idempotency_key)  # a failed first try claims nothing
            raise
        if idempotency_key is not None:
            pipe().store.idempotency_done(key.key_id, idempotency_key, result.id or DETERMINISTIC)
        metrics.record(result)
        audit_of(request).assessment_id = result.id
        headers = {"Location": f"/v1/assessments/{result.id}"} if result.id else None
        return Response(result.model_dump_json(), status_code=201 if result.id else 200, headers=headers, media_type="application/json")

    def idempotent_replay(key: ApiKey, idem: str, body: Any, mode: str) -> Assessment | None:
        """The earlier result of this Idempotency-Key (1-200 printable ASCII, checked by its Header declaration)
        with this body, or None on its first use."""
        digest = hashlib.sha256(json.dumps([mode, body], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        try:
            earlier = pipe().store.idempotency_claim(key.key_id, idem, digest)
        except IdempotencyConflict:
            raise ApiError(422, "Idempotency-Key reused", "this Idempotency-Key was used with another body or mode",
                           "idempotency-key-reused", errors=[{"field": "Idempotency-Key", "message": "already used with another body"}]) from None
        except IdempotencyInProgress:
            raise ApiError(409, "Request in progress", "a request with this Idempotency-Key is still running; retry shortly",
                           "idempotency-in-progress", headers={"Retry-After": "1"}) from None
        if earlier is None:
            return None
        if earlier == DETERMINISTIC:  # not stored: the deterministic result is a pure function of the body
            return assess(validate(body), mode="deterministic")
        return pipe().get(earlier)

    @app.get("/v1/assessments", response_model=AssessmentPage, tags=["assessments"], responses=problem_responses(401, 403, 422, 429))
    def list_assessments(request: Request, key: Annotated[ApiKey, Depends(role("read"))],
                         status: Annotated[Literal["awaiting_signoff", "final"] | None, Query()] = None,
                         page: Annotated[int, Query(ge=1, le=100000)] = 1,
                         page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> AssessmentPage:
        rows, total = pipe().store.list(status, page_size, (page - 1) * page_size, site=key.site)
        audit_of(request).ids = [r["id"] for r in rows]
        plans = [r["plan"] or {} for r in rows]
        items = [AssessmentSummary(id=r["id"], status=r["status"], decision=r["decision"],
                                   plan=plan.get("agent") or plan.get("action", ""),
                                   created_at=r["audit"]["created_at"]) for r, plan in zip(rows, plans, strict=True)]
        return AssessmentPage(items=items, page=page, page_size=page_size, total=total)

    @app.get("/v1/assessments/{assessment_id}", response_model=Assessment, tags=["assessments"], responses=problem_responses(401, 403, 404, 429))
    def get_assessment(assessment_id: str, key: Annotated[ApiKey, Depends(role("read"))]) -> Assessment:
        return load(assessment_id, key)

    @app.get("/v1/assessments/{assessment_id}/report", tags=["assessments"], response_class=Response,
             responses={200: {"description": "The report", "content": {"text/markdown": {"schema": {"type": "string"}}}},
                        **problem_responses(401, 403, 404, 429)})
    def get_report(assessment_id: str, key: Annotated[ApiKey, Depends(role("read"))]) -> Response:
        a = load(assessment_id, key)
        return Response(a.report_markdown or "", media_type="text/markdown; charset=utf-8")

    # The body goes through the strict parser (a repeated "action" is a 400, not last-wins), after the key is checked.
    @app.post("/v1/assessments/{assessment_id}/signoff", response_model=Assessment, tags=["assessments"],
              openapi_extra=body_schema("SignoffRequest"),
              responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429), summary="Approve, amend or reject (prescriber)")
    async def signoff(assessment_id: str, key: Annotated[ApiKey, Depends(role("signoff"))],
                      body: Annotated[SignoffRequest, Depends(json_body(SignoffRequest, "a sign-off, e.g. {\"action\": \"approve\"}"))]) -> Assessment:
        check_owner(assessment_id, key)
        try:
            # The prescriber is the authenticated key, never a name in the body.
            a = await in_worker_thread(lambda: pipe().signoff(assessment_id, body.action, key.who, body.comment, body.agent,
                                                              acknowledged=body.acknowledged, key_id=key.key_id))
        except AssessmentNotFound:
            raise not_found(assessment_id) from None
        except NotAwaitingSignoff as exc:
            winner = exc.winner
            errors = [{"field": "action", "message": f"already decided: {winner.action} by {winner.prescriber}"}] if winner else None
            raise ApiError(409, "Not awaiting sign-off", str(exc), "not-awaiting-signoff", errors=errors) from None
        except UnacknowledgedChecks as exc:
            raise ApiError(409, "Blocking checks not acknowledged", str(exc), "blocking-checks-pending",
                           errors=[{"field": "acknowledged", "message": f"acknowledge {c.entry!r} ({c.field}): {c.reason}"}
                                   for c in exc.pending]) from None
        except InvalidSignoff as exc:
            raise ApiError(422, "Invalid sign-off", str(exc), "invalid-signoff",
                           errors=[{"field": f, "message": m} for f, m in exc.errors.items()]) from None
        return a

    @app.get("/v1/protocols", tags=["protocols"], responses=problem_responses(401, 403, 429),
             summary="The registered protocols: profiles, options, decisions and each request's JSON schema")
    def list_protocols(key: Annotated[ApiKey, Depends(role("read"))]) -> dict[str, Any]:
        return {"default": DEFAULT_PROTOCOL, "protocols": [spec.summary() for spec in registry().values()]}

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={
        200: {"description": "Ready: every check is ok", "content": {"application/json": {"schema": READINESS}}},
        503: {"description": "A dependency is not ready", "content": {"application/json": {"schema": READINESS}}}})
    def readyz() -> Response:
        checks: dict[str, str] = {}
        st = ensure_state()
        for name, probe in (("store", lambda: pipe().store.ping()), ("index", lambda: _index_ok(st["indexes"])),
                            ("warm", lambda: _warm_ok(st)),
                            *((("redis", lambda: st["limiter"].ping()),) if settings.redis_url else ())):
            try:
                probe()
                checks[name] = "ok"
            except Exception as exc:  # report, do not raise: readiness is an answer, not an error
                checks[name] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.openapi = _with_patient_components(app)  # type: ignore[method-assign]
    return app


def _index_ok(indexes: list[Any]) -> None:
    if not all(index.is_current for index in indexes):
        raise RuntimeError("index is stale")


def _warm_ok(state: dict[str, Any]) -> None:
    if not state.get("warmed"):
        raise RuntimeError("retrieval not warmed up")


async def _json_body(request: Request) -> Any:
    # Strict JSON (body.py): duplicate keys, NaN, huge integers and deep nesting are 400s naming the field;
    # a body not declared as JSON is 415. Read raw, not as a model, so the patient gets our field errors.
    return await read_json(request, "a JSON object (a patient)")
