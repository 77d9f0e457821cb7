"""MCP latency per tool call, over stdio (`clinreason mcp`) and Streamable HTTP (`clinreason serve` at /mcp).

    python benchmarks/bench_mcp.py [--calls 30]

Both servers are real processes on one data dir (CLINREASON_DATA_DIR, else a fresh one: the first start
then builds the index), warmed by one round of every tool before the clock starts. One SDK client
session per transport, one call at a time; each call is timed from the client (serialisation, transport,
the tool). Reported: median and p95 per tool in ms, and the load average before and after.
The HTTP session carries an admin key (it may sign off), so it also times `signoff`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
from bench_api import Served
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from revisions import ROOT

from clinreason.samples import load_sample

PATIENT = load_sample("raas-nitrofurantoin-allergy")
Timings = dict[str, list[float]]


async def timed(timings: Timings, tool: str, call: Callable[[], Awaitable[Any]]) -> Any:
    t0 = time.perf_counter()
    result = await call()
    timings.setdefault(tool, []).append((time.perf_counter() - t0) * 1000)
    if result.is_error:
        raise RuntimeError(f"{tool}: {result.content}")
    return result.structured_content


async def round_of_calls(client: Client, timings: Timings, signoff: bool) -> None:
    def call(tool: str, **args: Any) -> Callable[[], Awaitable[Any]]:
        return lambda: client.call_tool(tool, args)

    await timed(timings, "list_protocols", call("list_protocols"))
    await timed(timings, "assess (deterministic)", call("assess", request=PATIENT, mode="deterministic"))
    full = await timed(timings, "assess (full)", call("assess", request=PATIENT, mode="full"))
    await timed(timings, "get_assessment", call("get_assessment", assessment_id=full["id"]))
    await timed(timings, "get_report", call("get_report", assessment_id=full["id"]))
    await timed(timings, "search_knowledge", call("search_knowledge", query="hyperkalemia with an ACE inhibitor", kind=["policy"]))
    await timed(timings, "explain_rule", call("explain_rule", protocol="uti-cystitis", rule_id="EX-HYPERKALEMIA"))
    if signoff:
        await timed(timings, "signoff", call("signoff", assessment_id=full["id"], action="approve"))


async def measure(client: Client, calls: int, signoff: bool) -> Timings:
    await round_of_calls(client, {}, signoff)  # warm: indexes open, caches filled
    timings: Timings = {}
    for _ in range(calls):
        await round_of_calls(client, timings, signoff)
    return timings


async def over_stdio(env: dict[str, str], calls: int) -> Timings:
    params = StdioServerParameters(command=sys.executable, args=["-m", "clinreason.cli", "mcp"], env=env)
    async with Client(params, read_timeout_seconds=600) as client:
        return await measure(client, calls, signoff=False)


async def over_http(url: str, key: str, calls: int) -> Timings:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=600) as http, \
            Client(streamable_http_client(url, http_client=http), read_timeout_seconds=600) as client:
        return await measure(client, calls, signoff=True)


def report(transport: str, timings: Timings) -> None:
    for tool, ms in timings.items():
        s = sorted(ms)
        print(f"  {transport:<6} {tool:<24} median {statistics.median(s):8.1f} ms   p95 {s[int(0.95 * (len(s) - 1))]:8.1f} ms   (n={len(s)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=30, help="timed rounds of every tool per transport")
    args = parser.parse_args()
    data_dir = Path(os.environ.get("CLINREASON_DATA_DIR") or tempfile.mkdtemp(prefix="clinreason-bench-mcp-"))
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} CPUs)")
    # HTTP: `clinreason serve` as bench_api starts it (this tree, rate limit lifted, a global admin key: it may sign off).
    with Served(ROOT / "src", workers=1, data_dir=data_dir) as served:
        report("stdio", anyio.run(over_stdio, served.env, args.calls))
        report("http", anyio.run(over_http, f"{served.url}/mcp", served.key, args.calls))
    load1 = os.getloadavg()
    print(f"load average after:  {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    main()
