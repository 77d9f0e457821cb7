"""Exception handlers: every error the API answers is an RFC 9457 problem (problems.py)."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clinreason.api.problems import ApiError, allowed_methods, problem
from clinreason.errors import ClinreasonError


async def clinreason_error(request: Request, exc: ClinreasonError) -> JSONResponse:
    """Any error of the package's tree, by its attributes: status, problem type, title, detail, field errors."""
    return problem(exc.status, exc.title, exc.detail(), kind=exc.problem_type, errors=exc.field_errors() or None,
                   headers=exc.headers, instance=request.url.path)


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    status, title, detail, kind, errors, headers = exc.args
    return problem(status, title, detail, kind=kind, errors=errors, headers=headers, instance=request.url.path)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or "(body)", "message": e["msg"]} for e in exc.errors()]
    return problem(422, "Invalid input", "the request has invalid fields", kind="invalid-input", errors=errors, instance=request.url.path)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # Keep the exception's headers; a 405's Allow lists the methods of every route on the path (RFC 9110).
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request.app.router.routes, request.url.path) or headers.get("Allow", "")
    return problem(exc.status_code, str(exc.detail), headers=headers or None, instance=request.url.path)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:  # never a bare 500 page
    return problem(500, "Internal error", "the error was logged; the request can be retried", instance=request.url.path)
