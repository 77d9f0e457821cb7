"""CORS for /cds-services only: browser-based CDS Clients (and the CDS Hooks sandbox) call it from
another origin. The rest of the API is not opened to browsers.

Pure ASGI: a preflight (OPTIONS with Access-Control-Request-Method) is answered here; every other
answer under the prefix, errors included, carries the headers, so a browser can read a 401 or 412.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

PREFIX = "/cds-services"
ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Accept"
EXPOSE_HEADERS = "Content-Type, Location, WWW-Authenticate, Retry-After"
MAX_AGE = "600"


class CdsHooksCors:
    def __init__(self, app: Any, origins: list[str]):
        self.app, self.origins = app, list(origins)

    def _allowed(self, origin: str | None) -> str | None:
        if origin is None:
            return None
        if "*" in self.origins:
            return "*"
        return origin if origin in self.origins else None

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        allowed = self._allowed(headers.get("origin"))
        cors = [(b"vary", b"Origin")]
        if allowed is not None:
            cors += [(b"access-control-allow-origin", allowed.encode("latin-1")),
                     (b"access-control-expose-headers", EXPOSE_HEADERS.encode())]
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            preflight = [*cors]
            if allowed is not None:
                preflight += [(b"access-control-allow-methods", ALLOW_METHODS.encode()),
                              (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                              (b"access-control-max-age", MAX_AGE.encode())]
            await send({"type": "http.response.start", "status": 200 if allowed else 403,
                        "headers": [*preflight, (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, with_cors)
