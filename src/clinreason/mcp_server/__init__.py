"""MCP server: clinreason's assessments, reports, knowledge and rules as Model Context Protocol tools.

    models.py    the tools' structured outputs (pydantic)
    runtime.py   where the tools get the pipeline: the API's app state (HTTP) or a local one (stdio)
    tools.py     the tools and resources every transport offers (`build_server`)
    http.py      Streamable HTTP: API-key auth, roles, and the prescriber-only sign-off tool
    mount.py     /mcp on the REST app, and its session manager in the app's lifespan

Named `mcp_server`, not `mcp`, so it never shadows the SDK's package. Transports:
`clinreason mcp` (stdio, cli/mcp.py) and `/mcp` under `clinreason serve` (api/app.py).
Importing this package imports nothing: the SDK (the `mcp` extra) loads with tools.py.
"""
