"""The MCP Inspector's CLI (`@modelcontextprotocol/inspector-cli`, an MCP client nobody here wrote),
installed from the npm registry into `$CLINREASON_MCP_INSPECTOR` or `.cache/mcp-inspector`, never committed.
`.ci/run` fills the cache first:

    python tests/mcp/mcp_inspector.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = "@modelcontextprotocol/inspector-cli@1.0.3"


def cache_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / ".cache" / "mcp-inspector"
    return Path(os.environ.get("CLINREASON_MCP_INSPECTOR") or default)


def entry() -> Path:
    # build/index.js is the client itself (--method, --tool-name, --tool-arg); build/cli.js only launches it.
    return cache_dir() / "node_modules" / "@modelcontextprotocol" / "inspector-cli" / "build" / "index.js"


def ensure() -> Path:
    """The CLI's entry script, installing the pinned version when it is missing."""
    if not entry().is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to fetch the MCP Inspector CLI (Node.js 18 or later)")
        cache_dir().mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(cache_dir()), PACKAGE],
                       check=True, timeout=600, stdout=sys.stderr)
    return entry()


if __name__ == "__main__":
    print(ensure())
