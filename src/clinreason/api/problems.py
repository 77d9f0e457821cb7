"""RFC 9457 problem details (application/problem+json) for every error."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

try:  # newer FastAPI keeps an included router as one route: this lists the routes inside it too
    from fastapi.routing import iter_route_contexts
except ImportError:  # older FastAPI copies each included route into the app's routes
    def iter_route_contexts(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)

PROBLEM = "application/problem+json"


class ApiError(Exception):
    """Raised anywhere in the API layer; rendered as problem+json by the app's handler."""

    def __init__(self, status: int, title: str, detail: str = "", kind: str = "about:blank", errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None):
        self.args = (status, title, detail, kind, errors, headers)


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


TITLES = {
    400: "Malformed request: the body is not JSON, or JSON this API refuses (a duplicate key, NaN or Infinity, a number out "
         "of range, nesting too deep, an unpaired surrogate); `errors` names the field",
    401: "Missing or invalid API key", 403: "Role not permitted", 404: "Not found",
    405: "Method not allowed on this path; `Allow` lists the methods that are",
    409: "Conflict: not awaiting sign-off, or blocking checks not acknowledged", 413: "Request body too large",
    415: "Unsupported media type: the body must be sent as application/json (UTF-8, uncompressed)",
    406: "Not acceptable: the Accept header asks for no format this resource has; `errors` lists those it has",
    422: "Invalid input", 429: "Rate limit exceeded", 431: "Request header fields too large",
    503: "Service unavailable: the document could not be rendered now (PDF); the record is unchanged",
}


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": {"type": "string"}}


# The headers a problem always carries.
HEADERS = {
    401: {"WWW-Authenticate": _header("`Bearer`: the scheme to authenticate with")},
    405: {"Allow": _header("The methods this path accepts")},
    429: {"Retry-After": _header("Seconds until the rate-limit window resets")},
}


def problem_responses(*codes: int, titles: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for problems with these status codes (`titles` overrides the descriptions)."""
    out: dict[int | str, dict[str, Any]] = {}
    for c in codes:
        out[c] = {"description": (titles or {}).get(c, TITLES[c]), "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
        if c in HEADERS:
            out[c]["headers"] = HEADERS[c]
    return out


def allowed_methods(routes: Any, path: str) -> str:
    """The `Allow` of a 405: every method of every route whose path matches (Starlette's own
    405 lists only the first matching route's, e.g. POST without GET)."""
    methods: set[str] = set()
    for route in iter_route_contexts(routes):
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= set(route_methods)
    return ", ".join(sorted(methods))

