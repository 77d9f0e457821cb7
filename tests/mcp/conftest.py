"""Fixtures of the MCP tests: clinreason's MCP server over stdio (`python -m clinreason.cli mcp`, started by
the SDK's stdio client, which stops it on exit) and over Streamable HTTP (the REST app on uvicorn, a free
127.0.0.1 port, in a thread; always stopped at teardown); API keys per role; the Inspector CLI."""

from __future__ import annotations

from collections.abc import Iterator

import mcp_inspector
import pytest
from served import served

from clinreason.api.app import create_app
from clinreason.config import Settings

SITE = "pharmacy-mcp"


@pytest.fixture(scope="session")
def mcp_keys(offline_pipeline) -> dict[str, str]:
    """A key per role at one site, and a prescriber of another site."""
    store = offline_pipeline.store
    keys = {role: store.create_key(f"mcp-{role}", role, SITE) for role in ("submitter", "prescriber")}
    keys["other_site"] = store.create_key("mcp-other", "prescriber", "pharmacy-elsewhere")
    return keys


@pytest.fixture(scope="module")
def mcp_url(offline_pipeline) -> Iterator[str]:
    """The REST app (with /mcp) on uvicorn in a thread; stopped at teardown whatever happens."""
    with served(create_app(Settings(), pipeline=offline_pipeline)) as base:
        yield f"{base}/mcp"


@pytest.fixture(scope="session")
def inspector() -> str:
    """The Inspector CLI's entry script (installed into the cache dir when missing)."""
    return str(mcp_inspector.ensure())
