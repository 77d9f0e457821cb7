"""Driving clinreason's MCP server with the SDK's own client, over stdio and Streamable HTTP."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

TIMEOUT = 300.0  # seconds per call: the first full assessment of a fresh process opens the indexes (loaded 2-core machine)


def stdio_server() -> StdioServerParameters:
    # The whole environment: the session's data dir (CLINREASON_DATA_DIR) and the offline switches.
    return StdioServerParameters(command=sys.executable, args=["-m", "clinreason.cli", "mcp"], env=dict(os.environ))


@asynccontextmanager
async def stdio_client() -> AsyncIterator[Client]:
    """`python -m clinreason.cli mcp` as a subprocess; the SDK stops it when the block exits."""
    async with Client(stdio_server(), read_timeout_seconds=TIMEOUT) as client:
        yield client


@asynccontextmanager
async def http_client(url: str, key: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=TIMEOUT) as http, \
            Client(streamable_http_client(url, http_client=http), read_timeout_seconds=TIMEOUT) as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The structured output of a successful call (AssertionError with the text of a tool error)."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    """The text of a tool error (AssertionError when the call succeeds)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} succeeded: {json.dumps(result.structured_content)[:300]}"
    return " ".join(getattr(c, "text", "") for c in result.content)


async def tool_names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}
