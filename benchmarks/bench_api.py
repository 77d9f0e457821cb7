"""REST load benchmark: throughput and latency at several concurrencies.

    python benchmarks/bench_api.py [--requests 400] [--concurrency 1,8,32] [--workers 1]
    python benchmarks/bench_api.py --baseline REV [--rounds 3] [--concurrency 8]

Starts `clinreason serve` on a free local port (own data dir, rate limit
lifted), creates a key, warms up, then for each mode (deterministic, full
offline) and concurrency sends the sample patients round-robin with an
async httpx client. Reports requests/s, p50/p95 latency, errors and the
server's CPU per request. With --baseline, that commit (a temporary git worktree)
is served too, interleaved round by round with the working tree (a fresh server
each), and the medians are compared with the machine's load.
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
from pathlib import Path

import httpx
from revisions import ROOT, baseline_tree, load_note, tree_env, trees

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


class Served:
    """`clinreason serve` from a given src/ tree (own data dir, rate limit lifted), stopped on exit."""

    def __init__(self, src: Path, workers: int, data_dir: Path | None = None):
        data_dir = data_dir or Path(os.environ.get("CLINREASON_DATA_DIR") or tempfile.mkdtemp(prefix="clinreason-bench-api-"))
        self.env = tree_env(src, data_dir, CLINREASON_RATE_LIMIT="100000000")
        # A global admin: the same command on every release (sites came in 0.2).
        self.key = subprocess.run([sys.executable, "-m", "clinreason.cli", "keys", "create", "--name", "bench", "--role", "admin"],
                                  env=self.env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()).stdout.strip()
        # The index (and whatever else `kb build` prepares) is built before the server starts, as an
        # operator would; the server then only opens it.
        subprocess.run([sys.executable, "-m", "clinreason.cli", "kb", "build"], env=self.env, capture_output=True, check=True,
                       cwd=tempfile.gettempdir())
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen([sys.executable, "-m", "clinreason.cli", "serve", "--port", self.url.rsplit(":", 1)[1],
                                      "--workers", str(workers)], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())

    def __enter__(self) -> Served:
        deadline = time.monotonic() + 900  # a loaded machine
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not become ready")
        asyncio.run(run(self.url, self.key, "full", 2, 2 * len(PATIENTS), PATIENTS))  # warm caches in every worker
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def measure(self, mode: str, concurrency: int, requests: int) -> dict[str, float]:
        pids = server_pids(self.proc.pid)
        cpu0 = cpu_seconds(pids)
        rps, lat, errors = asyncio.run(run(self.url, self.key, mode, concurrency, requests, PATIENTS))
        s = sorted(lat)
        return {"rps": rps, "p50": statistics.median(s), "p95": s[int(0.95 * (len(s) - 1))], "errors": errors,
                "cpu": (cpu_seconds(pids) - cpu0) / requests * 1000}


PATIENTS = [load_sample(n) for n in sample_index()]  # every protocol's samples
MODES = ("deterministic", "full")


def compare(rev: str, args: argparse.Namespace) -> None:
    """Interleaved rounds (REV, working tree, REV, ...): each round a fresh server per tree, same requests."""
    load_before = load_note()
    concurrency = int(args.concurrency.split(",")[0]) if "," not in args.concurrency else 8
    with tempfile.TemporaryDirectory(prefix="bench-api-base-") as tmp, baseline_tree(rev) as base_src:
        names = trees(rev, base_src)
        # One data dir per tree, kept across rounds (each release has its own store schema); the first
        # server of each builds its index before it is ready, outside the measurement.
        data_dirs = {name: Path(tmp) / f"data-{i}" for i, name in enumerate(names)}
        results: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in names}
        for r in range(args.rounds):
            for name, src in names.items():
                with Served(src, args.workers, data_dirs[name]) as server:
                    results[name].append({mode: server.measure(mode, concurrency, args.requests) for mode in MODES})
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    load_after = load_note()

    def med(name: str, mode: str, key: str) -> float:
        return statistics.median(round_[mode][key] for round_ in results[name])

    print(f"REST load: {rev} vs working tree, {args.rounds} interleaved rounds x {args.requests} requests, "
          f"concurrency {concurrency}, {args.workers} worker(s), {os.cpu_count()} cores")
    print(f"{load_before} before, {load_after} after\n")
    print(f"| mode | {rev} req/s / p50 ms / CPU ms/req | working tree req/s / p50 ms / CPU ms/req | throughput ratio | errors |")
    print("|---|---|---|---|---|")
    names = list(results)
    for mode in MODES:
        a, b = (tuple(med(n, mode, k) for k in ("rps", "p50", "cpu")) for n in names)
        errors = sum(round_[mode]["errors"] for n in names for round_ in results[n])
        print(f"| {mode} | {a[0]:.1f} / {a[1]:.1f} / {a[2]:.1f} | {b[0]:.1f} / {b[1]:.1f} / {b[2]:.1f} | {b[0] / a[0]:.2f}x | {errors:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--baseline", "--compare", dest="baseline", metavar="REV",
                    help="also serve this commit (a temporary git worktree), interleaved, and compare (concurrency 8)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.baseline:
        compare(args.baseline, args)
        return
    with Served(ROOT / "src", args.workers) as server:
        print(f"REST load, {args.requests} requests per cell, {args.workers} worker(s), {os.cpu_count()} cores")
        for mode in MODES:
            for c in [int(x) for x in args.concurrency.split(",")]:
                m = server.measure(mode, c, args.requests)
                print(f"  {mode:13s} concurrency {c:3d}: {m['rps']:7.1f} req/s  p50 {m['p50']:7.1f} ms  "
                      f"p95 {m['p95']:7.1f} ms  errors {m['errors']:.0f}  server CPU {m['cpu']:5.1f} ms/req")


if __name__ == "__main__":
    main()
