"""Full pipeline benchmark: warm offline CPU per assessment, and the LLM backend's round 1.

    python benchmarks/bench_pipeline.py [--baseline REV] [--rounds 3] [--runs 200] [--latency 0.3]

Each tree (REV's, in a temporary git worktree, and the working tree) runs in its own process
with its own data dir, interleaved for --rounds rounds, so load affects both alike:

1. Offline (rules backend), warm process: wall p50/p95 and CPU per assessment over every
   bundled sample (SQLite checkpointer and store included), per protocol and overall.
2. LLM backend against the scripted local server at a fixed --latency per call: round 1's wall
   time (from the end of retrieval to the end of the pharmacist's first review), when the
   doctor proposes the protocol's first allowed option ("agrees") and when it proposes another
   ("differs"), on samples whose plan is treatment; and the calls per assessment.

Prints each figure as a before/after pair with the ratio, and the machine's load. Without
--baseline only the working tree runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from revisions import baseline_tree, load_note, tree_env, trees  # noqa: E402

TREAT_SAMPLES = ("uncomplicated", "raas-nitrofurantoin-allergy", "lyme-warfarin-caution")


def _allowed(prompt: str) -> list[str]:
    return [line.split(" ")[1] for line in prompt.splitlines() if line.startswith("- ") and line.endswith("SELECTABLE")]


def cooperative(req: dict) -> Any:
    """A well-behaved model: the doctor picks the first allowed option, the pharmacist approves."""
    return _answer(req, differ=False)


def contrary(req: dict) -> Any:
    """The doctor does not propose the first allowed option: it escalates to a human prescriber (a
    later option without a reason the bounds accept would be replaced by the rules backend's first)."""
    return _answer(req, differ=True)


def _answer(req: dict, differ: bool) -> Any:
    from fake_openai import Reply

    prompt = req["messages"][-1]["content"]
    allowed = _allowed(prompt)
    if "write the referral note" in prompt:
        return Reply.json({"urgency": "within_24_48h", "reasons": [{"text": "Referral per protocol.", "citations": []}],
                           "patient_advice": [{"text": "See a physician.", "citations": []}], "avoid_agents": []})
    if req["model"] == "doctor-model":
        if differ:
            return Reply.json({"action": "escalate", "agent": None,
                               "rationale": [{"text": "A prescriber should decide for this patient.", "citations": []}]})
        return Reply.json({"action": "treat", "agent": allowed[0], "rationale": [{"text": "The first allowed option.", "citations": []}]})
    return Reply.json({"verdict": "approve", "concerns": [], "suggested_agent": None, "summary": {"text": "Checked.", "citations": []}})


def warm(runs: int) -> dict[str, dict[str, float]]:
    """Warm offline pipeline: per protocol and overall, p50/p95 wall and CPU per assessment (ms)."""
    from clinreason.config import Settings
    from clinreason.pipeline import Pipeline
    from clinreason.samples import load_sample, sample_index, sample_protocol

    names = sample_index()
    patients = [load_sample(n) for n in names]
    pipeline = Pipeline(Settings())
    for p in patients:  # first pass builds the index and fills the caches
        pipeline.run(p)
    groups: dict[str, list[int]] = {"all": list(range(len(names)))}
    for i, n in enumerate(names):
        groups.setdefault(sample_protocol(n), []).append(i)
    out = {}
    for group, idx in groups.items():
        times, cpu0 = [], time.process_time()
        for i in range(runs):
            t0 = time.perf_counter()
            pipeline.run(patients[idx[i % len(idx)]])
            times.append((time.perf_counter() - t0) * 1000)
        s = sorted(times)
        out[group] = {"p50": statistics.median(s), "p95": s[int(0.95 * (len(s) - 1))], "cpu": (time.process_time() - cpu0) * 1000 / runs}
    return out


def llm_round1(latency: float, repeats: int) -> dict[str, float]:
    """Round 1 wall time (ms, median over the treatment samples) with the doctor agreeing and differing."""
    from fake_openai import FakeOpenAI

    from clinreason.config import Settings
    from clinreason.pipeline import Pipeline
    from clinreason.samples import load_sample

    out: dict[str, float] = {}
    for label, handler in (("agrees", cooperative), ("differs", contrary)):
        with FakeOpenAI(latency=latency, handler=handler) as server:
            pipeline = Pipeline(Settings(agent_backend="llm", llm_base_url=server.base_url, llm_api_key="k", doctor_model="doctor-model",
                                         pharmacist_model="pharmacist-model", llm_timeout=10, llm_max_retries=0))
            walls, calls = [], []
            for _ in range(repeats):
                for name in TREAT_SAMPLES:
                    marks: dict[str, float] = {}

                    def progress(node: str, marks: dict[str, float] = marks) -> None:
                        marks.setdefault(node, time.perf_counter())  # the first time each node finishes

                    before = len(server.chat_requests)
                    pipeline.run(load_sample(name), progress=progress)
                    walls.append((marks["pharmacist"] - marks["assess" if "assess" in marks else "retrieve"]) * 1000)
                    calls.append(len(server.chat_requests) - before)
            out[label] = statistics.median(walls)
            out[f"{label} calls"] = statistics.median(calls)
    return out


def worker(runs: int, latency: float, repeats: int) -> dict[str, Any]:
    return {"warm": warm(runs), "llm": llm_round1(latency, repeats)}


def run_tree(src: Path, data: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", "--runs", str(args.runs), "--latency", str(args.latency), "--repeats", str(args.repeats)]
    out = subprocess.run(cmd, env=tree_env(src, data), capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", "--compare", dest="baseline", metavar="REV", help="the commit to compare with (a temporary git worktree)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each a fresh process per tree)")
    ap.add_argument("--runs", type=int, default=200, help="warm assessments per protocol group and round")
    ap.add_argument("--latency", type=float, default=0.3, help="seconds the scripted LLM server takes per call")
    ap.add_argument("--repeats", type=int, default=1, help="LLM runs of each treatment sample per round")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.runs, args.latency, args.repeats)))
        return
    load_before = load_note()
    base = baseline_tree(args.baseline) if args.baseline else nullcontext(None)
    with tempfile.TemporaryDirectory(prefix="bench-pipe-") as tmp, base as base_src:
        names = trees(args.baseline, base_src)
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for r in range(args.rounds):
            for name, src in names.items():
                results[name].append(run_tree(src, f"{tmp}/{abs(hash(name))}", args))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    def med(name: str, *path: str) -> float:
        values = []
        for run in results[name]:
            v: Any = run
            for p in path:
                v = v[p]
            values.append(v)
        return statistics.median(values)

    rows = [(f"warm {g}, {label} (ms)", ("warm", g, k)) for g in results["working tree"][0]["warm"]
            for k, label in (("p50", "wall p50"), ("cpu", "CPU per assessment"))]
    rows += [(f"LLM round 1 wall, doctor {k} (ms, +{args.latency * 1000:.0f} ms/call)", ("llm", k)) for k in ("agrees", "differs")]
    rows += [(f"LLM calls per assessment, doctor {k}", ("llm", f"{k} calls")) for k in ("agrees", "differs")]
    print(f"full pipeline, {args.rounds} interleaved rounds, {args.runs} warm runs per group; {load_before} before, {load_note()} after\n")
    header = [args.baseline] if args.baseline else []
    print("| measure | " + " | ".join([*header, "working tree"]) + (" | ratio |" if header else " |"))
    print("|---|" + "---|" * (len(header) + 1) + ("---|" if header else ""))
    for label, path in rows:
        after = med("working tree", *path)
        if header:
            before = med(args.baseline, *path)
            print(f"| {label} | {before:.2f} | {after:.2f} | {after / before:.2f}x |")
        else:
            print(f"| {label} | {after:.2f} |")


if __name__ == "__main__":
    main()
