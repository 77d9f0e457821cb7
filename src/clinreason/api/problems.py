"""RFC 9457 problem details (application/problem+json) for every error."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str = "", *, kind: str = "about:blank", errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": kind if kind == "about:blank" else f"urn:clinreason:problem:{kind}", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
    },
    "required": ["type", "title", "status"],
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    titles = {400: "Malformed request", 401: "Missing or invalid API key", 403: "Role not permitted", 404: "Not found",
              409: "Conflict: not awaiting sign-off, or blocking checks not acknowledged", 413: "Request body too large", 422: "Invalid input", 429: "Rate limit exceeded"}
    return {c: {"description": titles[c], "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}} for c in codes}
