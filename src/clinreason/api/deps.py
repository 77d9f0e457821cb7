"""FastAPI dependencies and the per-app state they read from `request.app.state`.

No `from __future__ import annotations` in this module or the routers: FastAPI
reads the dependency annotations at route definition time.
"""

import threading
from collections.abc import Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import Depends, Request

from clinreason.api.access import PERMISSIONS, audit_of
from clinreason.api.body import json_body, read_json
from clinreason.api.metrics import Metrics
from clinreason.api.problems import ApiError
from clinreason.api.ratelimit import RateLimiter, make_rate_limiter
from clinreason.api.schemas import SignoffRequest
from clinreason.assessment import Assessment
from clinreason.config import Settings
from clinreason.pipeline import AssessmentNotFound, Pipeline
from clinreason.protocols.registry import registry
from clinreason.store import ApiKey


class AppState:
    """What the routes of one app share, on `app.state.runtime` (one per app, so tests can build many).

    The pipeline, rate limiter and indexes are built once: at startup, or on first use
    when the server skipped the lifespan events. The settings and metrics exist from the start."""

    def __init__(self, settings: Settings, pipeline: Pipeline | None = None):
        self.settings = settings
        self.metrics = Metrics()
        self._pipeline = pipeline
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._worker_slots: anyio.CapacityLimiter | None = None

    def ensure(self) -> dict[str, Any]:
        """The built state: pipeline, limiter, indexes, warmed."""
        with self._lock:
            if not self._built:
                from clinreason.knowledge.retrieval import get_index

                state, settings = self._built, self.settings
                state["pipeline"] = self._pipeline or Pipeline(settings)
                state["limiter"] = make_rate_limiter(settings.redis_url, settings.rate_limit, settings.rate_window)
                from clinreason.knowledge.corpus import all_scopes

                # Build or open every knowledge base now, not on the first assessment.
                state["indexes"] = [get_index(settings, scope=scope) for scope in all_scopes()]
                for spec in registry().values():
                    spec.formulary.recognizer.warm()  # the spelling index, before any misspelt entry arrives
                # Ready means a full assessment runs warm: run the samples' retrieval plans now
                # (on a fresh data dir this loads the embedding model here, not on a request).
                state["warmed"] = state["pipeline"].warm_up()
        return self._built

    @property
    def pipeline(self) -> Pipeline:
        return self.ensure()["pipeline"]

    @property
    def limiter(self) -> RateLimiter:
        return self.ensure()["limiter"]

    async def in_worker_thread(self, fn: Callable[[], Any]) -> Any:
        # The offline pipeline is CPU-bound: running several at once in one process
        # only makes them fight over the GIL, so each worker runs one at a time
        # (scale with --workers). LLM-backed runs mostly wait on the network.
        # Created on first use, inside the event loop.
        if self._worker_slots is None:
            self._worker_slots = anyio.CapacityLimiter(1 if self.settings.agent_backend == "rules" else 32)
        return await anyio.to_thread.run_sync(fn, limiter=self._worker_slots)


def state_of(request: Request) -> AppState:
    return request.app.state.runtime


async def app_state(request: Request) -> AppState:
    # async: no thread hop; building the state (first use) happens where `.pipeline` is first read.
    return state_of(request)


StateDep = Annotated[AppState, Depends(app_state)]


# --- the API key: authenticate, then rate-limit, then check the role ----------
def authenticate(request: Request) -> ApiKey:
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not presented:
        raise ApiError(401, "Missing or invalid API key", "send Authorization: Bearer <key>", "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    key = state_of(request).pipeline.store.verify_key(presented)
    if key is None:
        raise ApiError(401, "Missing or invalid API key", "the key is unknown or revoked", "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    audit_of(request).key = key  # from here on, the access log names the key (403 and 429 included)
    return key


def rate_limit(request: Request, key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
    state = state_of(request)
    retry = state.limiter.hit(key.key_id)
    if retry is not None:
        raise ApiError(429, "Rate limit exceeded", f"at most {state.settings.rate_limit} requests per {state.settings.rate_window} s per key",
                       "rate-limited", headers={"Retry-After": str(retry)})
    return key


def require(permission: str) -> Callable[..., Any]:
    """A dependency: the authenticated, rate-limited key, if its role has `permission` (else 403)."""

    async def check(key: Annotated[ApiKey, Depends(rate_limit)]) -> ApiKey:
        if permission not in PERMISSIONS[key.role]:
            raise ApiError(403, "Role not permitted", f"role {key.role!r} cannot {permission}", "forbidden")
        return key
    return check


CreateKey = Annotated[ApiKey, Depends(require("create"))]
ReadKey = Annotated[ApiKey, Depends(require("read"))]
SignoffKey = Annotated[ApiKey, Depends(require("signoff"))]


# --- bodies: declare them after the key, so an unauthenticated body is never parsed --
async def patient_body(request: Request) -> Any:
    # Strict JSON (body.py): duplicate keys, NaN, huge integers and deep nesting are 400s naming the field;
    # a body not declared as JSON is 415. Read raw, not as a model, so the patient gets our field errors.
    return await read_json(request, "a JSON object (a patient)")


PatientBody = Annotated[Any, Depends(patient_body)]
# The strict parser too (a repeated "action" is a 400, not last-wins), then the model.
SignoffBody = Annotated[SignoffRequest, Depends(json_body(SignoffRequest, "a sign-off, e.g. {\"action\": \"approve\"}"))]


# --- site confinement: another site's assessment is answered as a missing one -----
def load_assessment(state: AppState, assessment_id: str, key: ApiKey) -> Assessment:
    """The assessment, if it belongs to the key's site (AssessmentNotFound otherwise)."""
    return state.pipeline.get(assessment_id, site=key.site)


def check_owner(state: AppState, assessment_id: str, key: ApiKey) -> None:
    owner = state.pipeline.store.owner(assessment_id)
    if owner is None or (key.site is not None and owner[0] != key.site):
        raise AssessmentNotFound(assessment_id)
