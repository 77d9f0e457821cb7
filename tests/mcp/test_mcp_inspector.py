"""A client nobody here wrote: the MCP Inspector's CLI (npm `@modelcontextprotocol/inspector-cli`), over
stdio (it starts `python -m clinreason.cli mcp` itself) and over Streamable HTTP with a Bearer key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clinreason.samples import load_sample

TIMEOUT = 600  # per Inspector run: node start, the server's start and a full assessment, on a loaded 2-core machine


def _run(inspector: str, target: list[str], method: list[str]) -> dict[str, Any]:
    # cwd = the CLI's build dir: it finds its own package.json by a path relative to the working directory.
    # subprocess.run's timeout kills it (and, over stdio, the server it started exits on EOF).
    if target[0] == sys.executable:  # stdio: the command, then its arguments after `--`
        argv = ["node", inspector, target[0], *method, "--", *target[1:]]
    else:
        argv = ["node", inspector, *target, *method]
    done = subprocess.run(argv, cwd=Path(inspector).parent, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(params=["stdio", "http"])
def target(request, mcp_url, mcp_keys) -> list[str]:
    if request.param == "stdio":
        return [sys.executable, "-m", "clinreason.cli", "mcp"]
    return [mcp_url, "--transport", "http", "--header", f"Authorization: Bearer {mcp_keys['submitter']}"]


def test_inspector_lists_the_tools(inspector, target):
    names = {t["name"] for t in _run(inspector, target, ["--method", "tools/list"])["tools"]}
    assert {"list_protocols", "assess", "get_assessment", "get_report", "search_knowledge", "explain_rule"} <= names
    assert "signoff" not in names  # stdio: never; HTTP: not for a submitter key


def test_inspector_runs_an_assessment(inspector, target):
    request = json.dumps(load_sample("raas-nitrofurantoin-allergy"))
    result = _run(inspector, target, ["--method", "tools/call", "--tool-name", "assess", "--tool-arg", f"request={request}",
                                      "--tool-arg", "mode=full"])
    assert result["isError"] is False
    out = result["structuredContent"]
    assert out["status"] == "awaiting_signoff" and out["recommendation"]["agent"] == "fosfomycin"
    options = {o["option"]: o for o in out["protocol"]["options"]}
    assert not options["trimethoprim"]["allowed"] and not options["tmp_smx"]["allowed"]
    assert json.loads(result["content"][0]["text"])["id"] == out["id"]  # the text block carries the same JSON
