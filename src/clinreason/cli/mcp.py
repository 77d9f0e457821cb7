"""`mcp`: the MCP server over stdio, for a local MCP client (Claude Desktop-style `command` + `args`).

The local user is the caller, as for `clinreason assess`: no key, no site, and no sign-off tool
(sign-off is a prescriber act: over HTTP, with a prescriber key; see docs/mcp.md).
"""

from __future__ import annotations

import threading


def mcp_cmd() -> None:
    """Serve MCP over stdin/stdout (tools: assess, get_assessment, get_report, search_knowledge, explain_rule, list_protocols)."""
    # The SDK (the `mcp` extra) is imported here, not by `clinreason --help`.
    from clinreason.mcp_server.runtime import LocalRuntime
    from clinreason.mcp_server.tools import build_server

    runtime = LocalRuntime()
    # Open the indexes while the client connects; a call that comes first waits for them (the pipeline's lock).
    threading.Thread(target=runtime.warm, name="clinreason-warm", daemon=True).start()
    build_server(runtime).run("stdio")
