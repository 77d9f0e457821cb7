"""Time the deterministic protocol assessment per patient, optionally against an earlier commit.

Workloads (the same patients for every tree: this checkout's, handed to each):
- samples: the bundled sample patients, cycled; parse + assess (raw dict ->
  Assessment, what an integrator pays) and assess only (validated Patient ->
  ProtocolResult). Text matching is cached across runs, as in a warm server.
- samples, cold match: the same, with the match cache cleared before every
  run, so each entry is recognised from scratch.
- 50 medications: one patient with a 50-entry medication list, cold match.
- misspelt / unknown: eight entries that need spelling tolerance or are not
  recognised at all, cold match.
- recognition only: every medication and allergy entry of those patients,
  matched one at a time with the cache cleared (no protocol logic).

    python benchmarks/bench_deterministic.py [--runs 5000]
    python benchmarks/bench_deterministic.py --compare 53d6745 [--rounds 5]

With --compare, the earlier commit's src/ is exported to a temporary folder and
both trees run in separate processes, interleaved round by round (A B A B ...)
so that machine load hits both alike; medians of the round medians and CPU
time per assessment are reported, with the load average before and after.
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

from revisions import export_src

ROOT = Path(__file__).resolve().parents[1]

FIFTY_MEDS = [
    "Lipitor 20 mg daily", "metformin 500 mg BID", "Synthroid 100 mcg", "amlodipine 5 mg", "ASA 81 mg EC daily",
    "pantoprazole 40 mg", "Vitamin D 1000 IU", "escitalopram 10 mg", "Ventolin inhaler PRN", "Flovent 125 mcg 2 puffs BID",
    "gabapentin 300 mg TID", "acetaminophen 500 mg PRN", "furosemide 40 mg", "allopurinol 100 mg", "tamsulosin 0.4 mg",
    "Eliquis 5 mg BID", "bisoprolol 5 mg", "rosuvastatin 10 mg", "sitagliptin 100 mg", "Jardiance 10 mg",
    "omeprazole 20 mg", "sertraline 50 mg", "trazodone 50 mg at bedtime", "melatonin 3 mg", "calcium carbonate 500 mg",
    "Vitamin B12 1000 mcg", "ferrous gluconate 300 mg", "magnesium oxide 400 mg", "docusate 100 mg", "senna 8.6 mg",
    "polyethylene glycol 17 g", "loratadine 10 mg", "fluticasone nasal spray", "Tylenol #3 PRN", "ondansetron 4 mg PRN",
    "levetiracetam 500 mg BID", "donepezil 10 mg", "quetiapine 25 mg", "mirtazapine 15 mg", "venlafaxine XR 75 mg",
    "clopidogrel 75 mg", "nitroglycerin spray PRN", "digoxin 0.125 mg", "prednisone 5 mg", "hydroxychloroquine 200 mg",
    "alendronate 70 mg weekly", "finasteride 5 mg", "oxybutynin 5 mg", "montelukast 10 mg", "Lisinopril 10 mg daily",
]
HARD_ENTRIES = ["spironolacton 25 mg", "wafarin 5mg", "Bactrin", "Zorbaxol 20 mg", "lisino\u200bpril 10 mg",
                "ramipril5mg daily", "Apo-Triazide 50/25", "Frobnicol tablets"]


def _patient(meds: list[str], base: dict) -> dict:
    p = json.loads(json.dumps(base))
    p["history"]["meds"] = meds
    return p


def _stats(ns: list[int]) -> tuple[float, float]:
    ordered = sorted(ns)
    return statistics.median(ordered) / 1000, ordered[int(0.95 * (len(ordered) - 1))] / 1000


def patients() -> dict[str, list[dict]]:
    """The benchmark's patients, from this checkout's samples: every tree is timed on these."""
    from clinreason.samples import load_sample, sample_index

    base = load_sample("uncomplicated")
    # The default protocol's samples: an earlier tree (before protocols were plug-ins) can run them too.
    uti = [p for p in (load_sample(n) for n in sample_index()) if "protocol" not in p]
    return {"samples": uti,
            "fifty": [_patient(FIFTY_MEDS, base)], "hard": [_patient(HARD_ENTRIES, base)]}


def worker(runs: int, given: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Run every workload in this process (whichever clinreason is on sys.path) and return figures in us."""
    from clinreason import assess
    from clinreason.assessment import assess_deterministic, validate

    try:  # the formulary layer (protocols as plug-ins), or the tree before it
        from clinreason.formulary import core as formulary
        from clinreason.protocols.registry import DEFAULT_PROTOCOL, get_spec

        def match(text: str):  # type: ignore[no-untyped-def]
            return get_spec(DEFAULT_PROTOCOL).formulary.match(text)
    except ImportError:
        from clinreason.knowledge import formulary  # type: ignore[no-redef]

        def match(text: str):  # type: ignore[no-untyped-def]
            return formulary.load_formulary().match(text)

    clear = formulary._match_cached.cache_clear
    raw = given["samples"]
    parsed = [validate(p) for p in raw]
    workloads = {
        "samples: parse + assess": (raw, lambda d, p: assess(d, mode="deterministic"), False),
        "samples: assess only": (parsed, lambda d, p: assess_deterministic(p), False),
        "samples: assess only, cold match": (parsed, lambda d, p: assess_deterministic(p), True),
        "50 medications, cold match": ([validate(p) for p in given["fifty"]], lambda d, p: assess_deterministic(p), True),
        "misspelt / unknown entries, cold match": ([validate(p) for p in given["hard"]], lambda d, p: assess_deterministic(p), True),
    }
    entries = [e for p in [*given["hard"], *raw] for e in p["history"].get("meds", []) + p["history"].get("allergies", [])]
    workloads["recognition only: one entry, cold match"] = (entries, lambda d, p: match(p), True)
    for p in raw:  # warm the profile, formulary and term index (and any lazy spelling index)
        assess(p, mode="deterministic")
    assess_deterministic(workloads["misspelt / unknown entries, cold match"][0][0])
    out: dict[str, dict[str, float]] = {}
    for name, (items, fn, cold) in workloads.items():
        datas = raw if items is parsed else items  # (the entry strings stand for themselves)
        ns: list[int] = []
        cpu0 = time.process_time_ns()
        for i in range(runs):
            if cold:
                clear()
            t0 = time.perf_counter_ns()
            fn(datas[i % len(datas)], items[i % len(items)])
            ns.append(time.perf_counter_ns() - t0)
        cpu = (time.process_time_ns() - cpu0) / runs / 1000
        p50, p95 = _stats(ns)
        out[name] = {"p50": p50, "p95": p95, "cpu": cpu}
    return out


def _run_worker(src: Path, runs: int, patients_file: Path) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(src), "CLINREASON_DATA_DIR": tempfile.mkdtemp(prefix="bench-det-")}
    r = subprocess.run([sys.executable, __file__, "--worker", "--runs", str(runs), "--patients", str(patients_file)], env=env,
                       capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare(rev: str, runs: int, rounds: int) -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        trees = {rev: export_src(rev, Path(tmp)), "working tree": ROOT / "src"}
        given = Path(tmp) / "patients.json"
        given_text = json.dumps(patients()["samples"])
        given.write_text(json.dumps(patients()))
        results: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in trees}
        for r in range(rounds):
            for name, src in trees.items():
                results[name].append(_run_worker(src, runs, given))
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    load_after = os.getloadavg()
    names = list(results)
    workloads = list(results[names[0]][0])

    def med(name: str, w: str, key: str) -> float:
        return statistics.median(run[w][key] for run in results[name])

    def best(name: str, w: str) -> float:  # the least-disturbed round: robust on a shared machine
        return min(run[w]["cpu"] for run in results[name])

    print(f"deterministic assess: {rev} vs working tree, {rounds} interleaved rounds x {runs} runs per workload, "
          f"{len(json.loads(given_text))} sample patients")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores)\n")
    print(f"| workload | {names[0]} p50 / p95 / CPU (us) | working tree p50 / p95 / CPU (us) | CPU ratio, median / best round |")
    print("|---|---|---|---|")
    for w in workloads:
        a, b = (tuple(med(n, w, k) for k in ("p50", "p95", "cpu")) for n in names)
        print(f"| {w} | {a[0]:.1f} / {a[1]:.1f} / {a[2]:.1f} | {b[0]:.1f} / {b[1]:.1f} / {b[2]:.1f} | "
              f"{b[2] / a[2]:.2f}x / {best(names[1], w) / best(names[0], w):.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--compare", metavar="REV", help="also run this git revision's src/, interleaved, and compare")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--patients", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.runs, json.loads(args.patients.read_text()))))
    elif args.compare:
        compare(args.compare, args.runs, args.rounds)
    else:
        for name, f in worker(args.runs, patients()).items():
            print(f"  {name:42s} p50 {f['p50']:8.1f} us   p95 {f['p95']:8.1f} us   CPU {f['cpu']:8.1f} us")


if __name__ == "__main__":
    main()
