"""Full pipeline benchmark.

    python benchmarks/bench_pipeline.py [--runs 200] [--cold 5] [--latency 0.3] [--protocol ID]
    python benchmarks/bench_pipeline.py --compare REV [--rounds 3] [--runs 200] [--cold 5]

1. Offline (rules backend), warm process: p50/p95 per assessment over the
   sample patients (SQLite checkpointer and store included).
2. Cold CLI: wall time of `clinreason assess --sample ...` in a fresh process
   (index and caches already on disk, as after a first run).
3. LLM backend against the scripted local server adding --latency seconds per
   call: LLM calls per assessment, how many are sequential on the critical
   path, and wall time.

--protocol limits 1 to one protocol's samples (default: every protocol's,
reported per protocol). --compare REV runs 1 and 2 for that git revision's src/
and the working tree in separate processes, interleaved for --rounds rounds,
on the samples both trees bundle, and prints medians, CPU and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("CLINREASON_DATA_DIR", tempfile.mkdtemp(prefix="clinreason-bench-"))

from fake_openai import FakeOpenAI, Reply  # noqa: E402
from revisions import ROOT, export_src  # noqa: E402

from clinreason.config import Settings  # noqa: E402
from clinreason.pipeline import Pipeline  # noqa: E402
from clinreason.samples import load_sample, sample_index  # noqa: E402


def pct(values: list[float]) -> str:
    s = sorted(values)
    return f"p50 {statistics.median(s):7.1f} ms  p95 {s[int(0.95 * (len(s) - 1))]:7.1f} ms"


def cooperative(req: dict) -> Reply:
    """A well-behaved model: the doctor picks the first allowed agent, the pharmacist approves."""
    prompt = req["messages"][-1]["content"]
    allowed = [line.split(" ")[1] for line in prompt.splitlines() if line.startswith("- ") and line.endswith("SELECTABLE")]
    if "write the referral note" in prompt:
        return Reply.json({"urgency": "within_24_48h", "reasons": [{"text": "Referral per protocol.", "citations": []}],
                           "patient_advice": [{"text": "See a physician.", "citations": []}], "avoid_agents": []})
    if req["model"] == "doctor-model":
        return Reply.json({"action": "treat", "agent": allowed[0], "rationale": [{"text": "First allowed agent.", "citations": []}]})
    return Reply.json({"verdict": "approve", "concerns": [], "suggested_agent": None, "summary": {"text": "Checked.", "citations": []}})


def warm(names: list[str], runs: int) -> dict[str, float]:
    """Warm offline pipeline over these samples: p50/p95 wall and CPU per assessment (ms)."""
    patients = [load_sample(n) for n in names]
    offline = Pipeline(Settings())
    for p in patients:  # first pass builds the index and fills the caches
        offline.run(p)
    times = []
    cpu0 = time.process_time()
    for i in range(runs):
        t0 = time.perf_counter()
        offline.run(patients[i % len(patients)])
        times.append((time.perf_counter() - t0) * 1000)
    s = sorted(times)
    return {"p50": statistics.median(s), "p95": s[int(0.95 * (len(s) - 1))], "cpu": (time.process_time() - cpu0) * 1000 / runs}


def cold(runs: int, sample: str = "warfarin", env: dict[str, str] | None = None) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "clinreason.cli", "assess", "--sample", sample], check=True, env=env,
                       stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _worker(names: list[str], runs: int, cold_runs: int) -> dict[str, float]:
    result = warm(names, runs)
    c = cold(cold_runs, env=dict(os.environ))
    return {**result, "cold": statistics.median(c)}


def compare(rev: str, runs: int, cold_runs: int, rounds: int) -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-pipe-") as tmp:
        trees = {rev: export_src(rev, Path(tmp)), "working tree": ROOT / "src"}
        data = {name: tempfile.mkdtemp(prefix="bench-pipe-data-") for name in trees}  # one index per tree
        names = sorted(set(json.loads((trees[rev] / "clinreason" / "samples" / "index.json").read_text()))
                       & set(sample_index())) if (trees[rev] / "clinreason" / "samples" / "index.json").exists() else sorted(sample_index())
        results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for r in range(rounds):
            for name, src in trees.items():
                env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{Path(__file__).resolve().parent}{os.pathsep}"
                       f"{ROOT / 'tests'}", "CLINREASON_DATA_DIR": data[name]}
                out = subprocess.run([sys.executable, __file__, "--worker", "--runs", str(runs), "--cold", str(cold_runs),
                                      "--samples", ",".join(names)], env=env, capture_output=True, text=True, check=True,
                                     cwd=tempfile.gettempdir())
                results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    load_after = os.getloadavg()

    def med(name: str, key: str) -> float:
        return statistics.median(run[key] for run in results[name])

    print(f"full offline pipeline: {rev} vs working tree, {rounds} interleaved rounds, {runs} warm runs over the "
          f"{len(names)} samples both bundle, {cold_runs} cold CLI runs per round")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores)\n")
    print(f"| measure | {rev} | working tree | ratio |")
    print("|---|---|---|---|")
    for key, label in (("p50", "warm p50 (ms)"), ("p95", "warm p95 (ms)"), ("cpu", "warm CPU per assessment (ms)"),
                       ("cold", "cold `assess --sample warfarin`, median (ms)")):
        a, b = med(rev, key), med("working tree", key)
        print(f"| {label} | {a:.1f} | {b:.1f} | {b / a:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description="full pipeline benchmark")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.3)
    ap.add_argument("--protocol", help="only this protocol's samples (default: each protocol's, reported apart)")
    ap.add_argument("--compare", metavar="REV", help="also run this git revision's src/, interleaved, and compare")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--samples", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.samples.split(","), args.runs, args.cold)))
        return
    if args.compare:
        compare(args.compare, args.runs, args.cold, args.rounds)
        return
    from clinreason.samples import sample_protocol

    by_protocol: dict[str, list[str]] = {}
    for name in sample_index():
        by_protocol.setdefault(sample_protocol(name), []).append(name)
    for protocol, names in by_protocol.items():
        if args.protocol and protocol != args.protocol:
            continue
        w = warm(names, args.runs)
        print(f"offline full pipeline, {protocol}, warm, {args.runs} runs over {len(names)} samples: "
              f"p50 {w['p50']:7.1f} ms  p95 {w['p95']:7.1f} ms  CPU {w['cpu']:.1f} ms")

    print(f"cold `clinreason assess --sample warfarin` (full mode), {args.cold} runs: {pct(cold(args.cold))}")

    with FakeOpenAI(latency=args.latency, handler=cooperative) as server:
        llm = Pipeline(Settings(agent_backend="llm", llm_base_url=server.base_url, doctor_model="doctor-model",
                                pharmacist_model="pharmacist-model", llm_timeout=10, llm_max_retries=0))
        for name in ("uncomplicated", "raas-nitrofurantoin-allergy", "fever-on-lisinopril"):
            before = len(server.chat_requests)
            t0 = time.perf_counter()
            a = llm.run(load_sample(name))
            wall = time.perf_counter() - t0
            calls = len(server.chat_requests) - before
            # Each graph step waits for the previous one: every call is on the critical path.
            print(f"LLM backend, {name}: {calls} LLM calls, {calls} sequential on the critical path, "
                  f"{len(a.rounds)} round(s), wall {wall:.2f} s at +{args.latency * 1000:.0f} ms/call "
                  f"(fallbacks {len(a.audit['llm_fallbacks'])})")


if __name__ == "__main__":
    main()
