"""REST API: assessments, sign-off, auth, rate limits, problem+json errors, metrics.

No `from __future__ import annotations` here: FastAPI must resolve the
annotations that name closure-local dependencies at definition time.

    clinreason serve            # or: uvicorn --factory clinreason.api.app:create_app
"""


import json
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from clinreason.api.metrics import Metrics
from clinreason.api.problems import problem, problem_responses
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
from clinreason.protocols.patient import Patient
from clinreason.samples import load_sample
from clinreason.store import ApiKey

PERMISSIONS: dict[str, set[str]] = {
    "submitter": {"create", "read"},
    "prescriber": {"create", "read", "signoff"},
    "admin": {"create", "read", "signoff"},
}


class ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str = "", kind: str = "about:blank", errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None):
        self.args = (status, title, detail, kind, errors, headers)


class SignoffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "approve", "comment": "Reviewed; INR check arranged."},
        {"action": "amend", "agent": "fosfomycin", "comment": "Patient prefers a single dose."},
    ]})
    action: Literal["approve", "amend", "reject"]
    comment: str = Field(default="", max_length=2000)
    agent: str | None = Field(default=None, description="With amend: an agent the protocol allows for this patient.")
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


def _patient_body_schema() -> dict[str, Any]:
    # The body is read raw (so contradictions and unknown fields get our field
    # errors), but documented with the full Patient schema and an example.
    example = load_sample("raas-nitrofurantoin-allergy")
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": REF.format(model="Patient")}, "example": example}}}}


def _with_patient_components(app: FastAPI) -> Callable[[], dict[str, Any]]:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = original()
            schema = Patient.model_json_schema(by_alias=True, ref_template=REF)
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(schema.pop("$defs", {}))
            components["Patient"] = schema
        return app.openapi_schema or spec
    return openapi


class _BodyLimit:
    """Pure ASGI middleware: refuse bodies over the limit (declared or streamed) with 413."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
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
                state["index"] = get_index(settings)  # build or open now, not on the first assessment
                from clinreason.knowledge.formulary import load_formulary

                load_formulary().recognizer.warm()  # the spelling index, before any misspelt entry arrives
        return state

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        ensure_state()
        yield

    app = FastAPI(
        title="clinreason", version="0.1.0", lifespan=lifespan,
        description="Clinical reasoning for acute uncomplicated cystitis (CA-ON). Send `Authorization: Bearer <key>`; "
                    "keys are created with `clinreason keys create`. Errors are RFC 9457 problem+json.",
    )
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)  # type: ignore[arg-type]

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
        return problem(exc.status_code, str(exc.detail), instance=request.url.path)

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
        return response

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

    def load(assessment_id: str, key: ApiKey, action: str) -> Assessment:
        try:
            a = pipe().get(assessment_id)
        except AssessmentNotFound:
            pipe().store.log_access(key, action, assessment_id, 404)
            raise ApiError(404, "Not found", f"no assessment {assessment_id!r}", "not-found") from None
        pipe().store.log_access(key, action, assessment_id, 200)
        return a

    # --- routes ---------------------------------------------------------------
    # The offline pipeline is CPU-bound: running several at once in one process
    # only makes them fight over the GIL, so each worker runs one at a time
    # (scale with --workers). LLM-backed runs mostly wait on the network.
    limiters: dict[str, anyio.CapacityLimiter] = {}

    async def in_worker_thread(fn: Callable[[], Any]) -> Any:
        if "pipeline" not in limiters:
            limiters["pipeline"] = anyio.CapacityLimiter(1 if settings.agent_backend == "rules" else 32)
        return await anyio.to_thread.run_sync(fn, limiter=limiters["pipeline"])

    @app.post("/v1/assessments", status_code=201, response_model=Assessment, tags=["assessments"],
              openapi_extra=_patient_body_schema(), responses=problem_responses(400, 401, 403, 413, 422, 429),
              summary="Assess a patient (full pipeline by default)")
    async def create_assessment(request_body: Annotated[Any, Depends(_json_body)], key: Annotated[ApiKey, Depends(role("create"))],
                                mode: Annotated[Literal["full", "deterministic"], Query()] = "full") -> Response:
        try:
            patient = validate(request_body)  # locale too: reject before waiting for a worker
            if mode == "deterministic":
                result = assess(patient, mode="deterministic")
            else:
                result = await in_worker_thread(lambda: pipe().run(patient))
        except InvalidPatient as exc:
            pipe().store.log_access(key, "create", None, 422)
            raise ApiError(422, "Invalid patient", f"{len(exc.errors)} field error(s)", "invalid-patient",
                           errors=[{"field": e.field, "message": e.message} for e in exc.errors]) from None
        metrics.record(result)
        pipe().store.log_access(key, "create", result.id, 201 if result.id else 200)
        headers = {"Location": f"/v1/assessments/{result.id}"} if result.id else None
        return Response(result.model_dump_json(), status_code=201 if result.id else 200, headers=headers, media_type="application/json")

    @app.get("/v1/assessments", response_model=AssessmentPage, tags=["assessments"], responses=problem_responses(401, 403, 422, 429))
    def list_assessments(key: Annotated[ApiKey, Depends(role("read"))],
                         status: Annotated[Literal["awaiting_signoff", "final"] | None, Query()] = None,
                         page: Annotated[int, Query(ge=1, le=100000)] = 1,
                         page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> AssessmentPage:
        rows, total = pipe().store.list(status, page_size, (page - 1) * page_size)
        pipe().store.log_access(key, "list", None, 200)
        plans = [r["plan"] or {} for r in rows]
        items = [AssessmentSummary(id=r["id"], status=r["status"], decision=r["decision"],
                                   plan=plan.get("agent") or plan.get("action", ""),
                                   created_at=r["audit"]["created_at"]) for r, plan in zip(rows, plans, strict=True)]
        return AssessmentPage(items=items, page=page, page_size=page_size, total=total)

    @app.get("/v1/assessments/{assessment_id}", response_model=Assessment, tags=["assessments"], responses=problem_responses(401, 403, 404, 429))
    def get_assessment(assessment_id: str, key: Annotated[ApiKey, Depends(role("read"))]) -> Assessment:
        return load(assessment_id, key, "read")

    @app.get("/v1/assessments/{assessment_id}/report", tags=["assessments"], response_class=PlainTextResponse,
             responses={200: {"content": {"text/markdown": {}}}, **problem_responses(401, 403, 404, 429)})
    def get_report(assessment_id: str, key: Annotated[ApiKey, Depends(role("read"))]) -> Response:
        a = load(assessment_id, key, "read_report")
        return Response(a.report_markdown or "", media_type="text/markdown; charset=utf-8")

    @app.post("/v1/assessments/{assessment_id}/signoff", response_model=Assessment, tags=["assessments"],
              responses=problem_responses(401, 403, 404, 409, 422, 429), summary="Approve, amend or reject (prescriber)")
    async def signoff(assessment_id: str, body: SignoffRequest, key: Annotated[ApiKey, Depends(role("signoff"))]) -> Assessment:
        try:
            # The prescriber is the authenticated key, never a name in the body.
            a = await in_worker_thread(lambda: pipe().signoff(assessment_id, body.action, f"{key.name} ({key.key_id})", body.comment, body.agent,
                                                              acknowledged=body.acknowledged))
        except AssessmentNotFound:
            pipe().store.log_access(key, "signoff", assessment_id, 404)
            raise ApiError(404, "Not found", f"no assessment {assessment_id!r}", "not-found") from None
        except NotAwaitingSignoff as exc:
            pipe().store.log_access(key, "signoff", assessment_id, 409)
            raise ApiError(409, "Not awaiting sign-off", str(exc), "not-awaiting-signoff") from None
        except UnacknowledgedChecks as exc:
            pipe().store.log_access(key, "signoff", assessment_id, 409)
            raise ApiError(409, "Blocking checks not acknowledged", str(exc), "blocking-checks-pending",
                           errors=[{"field": "acknowledged", "message": f"acknowledge {c.entry!r} ({c.field}): {c.reason}"}
                                   for c in exc.pending]) from None
        except InvalidSignoff as exc:
            pipe().store.log_access(key, "signoff", assessment_id, 422)
            raise ApiError(422, "Invalid sign-off", str(exc), "invalid-signoff",
                           errors=[{"field": f, "message": m} for f, m in exc.errors.items()]) from None
        pipe().store.log_access(key, "signoff", assessment_id, 200)
        return a

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "A dependency is not ready"}})
    def readyz() -> Response:
        checks: dict[str, str] = {}
        st = ensure_state()
        for name, probe in (("store", lambda: pipe().store.ping()), ("index", lambda: _index_ok(st["index"])),
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


def _index_ok(index: Any) -> None:
    if not index.is_current:
        raise RuntimeError("index is stale")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise ApiError(400, "Malformed request", "the body must be a JSON object (a patient)", "malformed-json")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "Malformed request", f"the body is not valid JSON: {exc}", "malformed-json") from None
