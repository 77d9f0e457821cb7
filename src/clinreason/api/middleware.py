"""The app's middleware: the request size limits, and the metrics and access log of every request."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
from fastapi import Request
from fastapi.responses import Response

from clinreason.api.access import action_for, audit_of, is_logged
from clinreason.api.deps import state_of
from clinreason.api.handlers import api_error
from clinreason.api.problems import ApiError, problem


class BodyLimit:
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


async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Count and time every request by route template; write the access log (access.py) once the status is known."""
    t0 = time.perf_counter()
    try:
        response = await call_next(request)
    except ApiError as exc:  # raised inside the body-limit wrapper
        response = await api_error(request, exc)
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    metrics = state_of(request).metrics
    metrics.requests.labels(request.method, path, str(response.status_code)).inc()
    metrics.latency.labels(request.method, path).observe(time.perf_counter() - t0)
    if is_logged(request.url.path):
        await anyio.to_thread.run_sync(lambda: _log_request(request, getattr(route, "path", None), response.status_code))
    return response


def _log_request(request: Request, route_path: str | None, status: int) -> None:
    audit = audit_of(request)
    path_id = (request.scope.get("path_params") or {}).get("assessment_id")
    state_of(request).pipeline.store.log_request(action=action_for(request.method, route_path), status=status, key=audit.key,
                                                 assessment_id=audit.assessment_id or path_id, method=request.method,
                                                 route=route_path or request.url.path[:200], ids=audit.ids)
