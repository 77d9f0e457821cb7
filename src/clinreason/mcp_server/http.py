"""The MCP server over Streamable HTTP, inside the REST app: the same API keys, roles and sites as /v1.

Every request to /mcp is authenticated and rate-limited like a REST request (api/deps.py): no valid
key is a 401 problem before any MCP message is read. The key then rides on the ASGI scope to the
tools, which check its role (api/access.py PERMISSIONS) and confine reads to its site.
Sign-off exists here only: listed for, and callable by, a key whose role may sign off.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from clinreason.api.access import PERMISSIONS
from clinreason.api.deps import AppState, authenticate, check_owner, rate_limit
from clinreason.assessment import Assessment
from clinreason.mcp_server.tools import build_server, require, tool_errors
from clinreason.store import ApiKey

KEY = "clinreason.api_key"  # the scope entry that carries the authenticated key to the tools
SIGNOFF = "signoff"


def identify(ctx: Context) -> ApiKey:
    request = getattr(ctx.request_context, "request", None)
    key = None if request is None else request.scope.get(KEY)
    if key is None:  # unreachable through McpEndpoint, which refuses a request without a key
        raise ToolError("Missing or invalid API key")
    return key


def may_sign(request: Any) -> bool:
    key = None if request is None else request.scope.get(KEY)
    return key is not None and SIGNOFF in PERMISSIONS[key.role]


async def hide_signoff(ctx: Any, call_next: Any) -> Any:
    """tools/list shows the sign-off tool only to a key that may sign off (middleware of the server)."""
    result = await call_next(ctx)
    if ctx.method == "tools/list" and isinstance(result, dict) and not may_sign(ctx.request):  # the wire form of the result
        result = {**result, "tools": [t for t in result.get("tools", []) if t.get("name") != SIGNOFF]}
    return result


def build_http_server(state: AppState) -> MCPServer:
    server = build_server(state, identify)
    server.middleware.append(hide_signoff)

    @server.tool(description="Prescriber sign-off of an assessment awaiting it: approve, amend (to another allowed option) or reject. "
                             "Approval lists every blocking check in `acknowledged`. Only one sign-off wins.")
    async def signoff(
        assessment_id: Annotated[str, Field(min_length=1, max_length=64)],
        action: Literal["approve", "amend", "reject"],
        ctx: Context,
        comment: Annotated[str, Field(max_length=2000)] = "",
        agent: Annotated[str | None, Field(description="With amend: an option id the protocol allows for this patient")] = None,
        acknowledged: Annotated[list[str] | None, Field(max_length=200, description="Blocking checks checked by hand")] = None,
    ) -> Assessment:
        with tool_errors():
            key = require(identify, ctx, SIGNOFF)
            check_owner(state, assessment_id, key)  # another site's assessment is answered as a missing one
            request = ctx.request_context.request
            if request is not None:
                from clinreason.api.access import audit_of

                audit_of(request).assessment_id = assessment_id
            # The prescriber is the authenticated key, never a name in the arguments.
            return await state.in_worker_thread(lambda: state.pipeline.signoff(
                assessment_id, action, key.who, comment, agent, acknowledged=acknowledged or [], key_id=key.key_id))

    return server


class McpEndpoint:
    """The ASGI app at /mcp: authenticate, then hand the request to the SDK's session manager.

    Stateless and JSON responses: any API worker can answer any request (no session affinity),
    as for the REST API. DNS-rebinding checks are off because the Bearer key is required:
    a browser page cannot send it (the REST API relies on the same)."""

    def __init__(self, state: AppState):
        self.server = build_http_server(state)
        self.manager = self.new_manager()

    def new_manager(self) -> StreamableHTTPSessionManager:
        """A fresh session manager: one runs only once, and an app's lifespan may run again (tests, schemathesis)."""
        self.server.streamable_http_app(stateless_http=True, json_response=True,
                                        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        self.manager = self.server.session_manager
        return self.manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        # ApiError (401, 429) propagates to the app's problem+json handler; the key lookup hits the store: a thread.
        key = await anyio.to_thread.run_sync(lambda: rate_limit(request, authenticate(request)))
        scope[KEY] = key
        await self.manager.handle_request(scope, receive, send)
