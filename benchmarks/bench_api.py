"""REST load benchmark: throughput and latency at several concurrencies.

    python benchmarks/bench_api.py [--requests 400] [--concurrency 1,8,32] [--workers 1]

Starts `clinreason serve` on a free local port (own data dir, rate limit
lifted), creates a key, warms up, then for each mode (deterministic, full
offline) and concurrency sends the sample patients round-robin with an
async httpx client. Reports requests/s, p50/p95 latency and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from clinreason.samples import load_sample, sample_index


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the server processes (uvicorn master and workers)."""
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def server_pids(root: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split()
    return [root, *map(int, out)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(url: str, key: str, mode: str, concurrency: int, total: int, patients: list[dict]) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(total))
    headers = {"Authorization": f"Bearer {key}"}

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in queue:
            t0 = time.perf_counter()
            r = await client.post(f"{url}/v1/assessments", params={"mode": mode}, json=patients[i % len(patients)], headers=headers)
            latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code not in (200, 201):
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return total / wall, latencies, errors


def main() -> None:
    ap = argparse.ArgumentParser(description="REST load benchmark")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    env = {**os.environ, "CLINREASON_RATE_LIMIT": "100000000"}
    env.setdefault("CLINREASON_DATA_DIR", tempfile.mkdtemp(prefix="clinreason-bench-api-"))
    key = subprocess.run([sys.executable, "-m", "clinreason.cli", "keys", "create", "--name", "bench", "--role", "submitter"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "clinreason.cli", "serve", "--port", str(port), "--workers", str(args.workers)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        patients = [load_sample(n) for n in sample_index()]
        asyncio.run(run(url, key, "full", 2, 2 * len(patients), patients))  # warm caches in every worker
        print(f"REST load, {args.requests} requests per cell, {args.workers} worker(s), {os.cpu_count()} cores")
        for mode in ("deterministic", "full"):
            for c in [int(x) for x in args.concurrency.split(",")]:
                pids = server_pids(server.pid)
                cpu0 = cpu_seconds(pids)
                rps, lat, errors = asyncio.run(run(url, key, mode, c, args.requests, patients))
                cpu = (cpu_seconds(pids) - cpu0) / args.requests * 1000
                s = sorted(lat)
                print(f"  {mode:13s} concurrency {c:3d}: {rps:7.1f} req/s  p50 {statistics.median(s):7.1f} ms  "
                      f"p95 {s[int(0.95 * (len(s) - 1))]:7.1f} ms  errors {errors}  server CPU {cpu:5.1f} ms/req")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
