"""REST API: assessments, sign-off, auth, rate limits, problem+json errors, metrics.

This module only wires the parts together: the per-app state and the dependencies
(deps.py), middleware (middleware.py), exception handlers (handlers.py), routes
(routers/), request and response models (schemas.py), the OpenAPI document
(openapi.py) and the offline docs (docs.py).

    clinreason serve            # or: uvicorn --factory clinreason.api.app:create_app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from clinreason.api import handlers
from clinreason.api.deps import AppState
from clinreason.api.docs import install_docs
from clinreason.api.middleware import BodyLimit, measure
from clinreason.api.openapi import install as install_openapi
from clinreason.api.problems import ApiError
from clinreason.api.routers import assessments, fhir, operations, protocols
from clinreason.api.schemas import AssessmentPage, AssessmentSummary, SignoffRequest
from clinreason.cds_hooks import router as cds_hooks
from clinreason.cds_hooks.cors import CdsHooksCors
from clinreason.config import Settings, get_settings
from clinreason.errors import ClinreasonError
from clinreason.mcp_server import mount as mcp_mount
from clinreason.pipeline import Pipeline
from clinreason.protocols.registry import DEFAULT_PROTOCOL, registry


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.runtime.ensure()  # build the pipeline, limiter and indexes before the first request
    async with mcp_mount.running(app):  # the MCP session manager at /mcp (mcp_server/mount.py)
        yield


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="clinreason", version="0.1.0", lifespan=lifespan,
        description="Clinical reasoning for pharmacist prescribing protocols (`GET /v1/protocols`). Send `Authorization: Bearer <key>`; "
                    "keys are created with `clinreason keys create`. Errors are RFC 9457 problem+json.",
        docs_url=None, redoc_url=None,  # FastAPI's pages load their assets from a CDN: install_docs serves them locally
    )
    app.state.runtime = AppState(settings, pipeline)
    install_docs(app)

    # Added last is outermost: measure sees the 413/431 answers of BodyLimit.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, header_limit=settings.max_header_bytes)  # type: ignore[arg-type]
    app.add_middleware(CdsHooksCors, origins=settings.cds_hooks_cors_origins)  # type: ignore[arg-type]  # /cds-services only, outside BodyLimit
    app.add_exception_handler(ApiError, handlers.api_error)  # type: ignore[arg-type]
    app.add_exception_handler(ClinreasonError, handlers.clinreason_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, handlers.validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, handlers.http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, handlers.unexpected_error)
    app.middleware("http")(measure)

    # Each router carries its own prefix, not include_router's: metrics and the access log label a request by
    # scope["route"].path, which newer FastAPI sets to the router's own route (not a prefixed copy).
    for module in (assessments, fhir, protocols, operations, cds_hooks):
        app.include_router(module.router)
    mcp_mount.mount(app)  # MCP over Streamable HTTP at /mcp, with the same API keys (when the mcp extra is installed)

    # The body models (read by body.py, so not known to FastAPI), security, and the statuses of every path: openapi.py.
    app.openapi = install_openapi(app, (SignoffRequest,), protocols=list(registry().values()),  # type: ignore[method-assign]
                                  default_protocol=DEFAULT_PROTOCOL)
    return app


__all__ = ["AssessmentPage", "AssessmentSummary", "SignoffRequest", "create_app"]
