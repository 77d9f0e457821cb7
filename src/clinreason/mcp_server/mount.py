"""/mcp on the REST app, when the `mcp` extra is installed (without it the API serves /v1 only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.util import find_spec
from typing import Any

PATH = "/mcp"


def mount(app: Any) -> None:
    if find_spec("mcp") is None:
        return
    from clinreason.mcp_server.http import McpEndpoint

    app.state.mcp = McpEndpoint(app.state.runtime)
    # A route, not a Mount: /mcp itself (no trailing-slash redirect), and the access log sees its path.
    app.add_route(PATH, app.state.mcp, methods=["GET", "POST", "DELETE"], include_in_schema=False)


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    """The session manager's task group, for the app's lifetime (a new manager each time the lifespan runs)."""
    endpoint = getattr(app.state, "mcp", None)
    if endpoint is None:
        yield
        return
    async with endpoint.new_manager().run():
        yield
