"""Full pipeline benchmark.

    python benchmarks/bench_pipeline.py [--runs 200] [--cold 5] [--latency 0.3]

1. Offline (rules backend), warm process: p50/p95 per assessment over the
   sample patients (SQLite checkpointer and store included).
2. Cold CLI: wall time of `clinreason assess --sample ...` in a fresh process
   (index and caches already on disk, as after a first run).
3. LLM backend against the scripted local server adding --latency seconds per
   call: LLM calls per assessment, how many are sequential on the critical
   path, and wall time.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description="full pipeline benchmark")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.3)
    args = ap.parse_args()
    patients = [load_sample(n) for n in sample_index()]

    offline = Pipeline(Settings())
    for p in patients:  # first pass builds the index and fills the caches
        offline.run(p)
    times = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        offline.run(patients[i % len(patients)])
        times.append((time.perf_counter() - t0) * 1000)
    print(f"offline full pipeline, warm, {args.runs} runs over {len(patients)} samples: {pct(times)}")

    cold = []
    for _ in range(args.cold):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "clinreason.cli", "assess", "--sample", "warfarin"], check=True,
                       stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        cold.append((time.perf_counter() - t0) * 1000)
    print(f"cold `clinreason assess --sample warfarin` (full mode), {args.cold} runs: {pct(cold)}")

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
