"""Time the deterministic protocol assessment per patient, against an earlier commit.

What is timed is what `clinreason.assess(request, mode="deterministic")` and the graph's
`assess` node do: validate the request, then `Validated.evaluate()`. Workloads (the same
patients for every tree: this checkout's, handed to each):

- (a) samples: every bundled sample of every protocol, cycled; parse + assess (raw dict ->
  Assessment, what an integrator pays), with the match cache warm (as in a warm server) and
  cleared before every run (each entry recognised from scratch).
- (b) 50-medication lists: 20 seeded lists of the formulary's own product names, a few
  misspelt (one edit) and a few unknown words, cold match.
- (c) unrecognised words: seeded random words of 5 to 12 letters, each matched alone with the
  cache cleared: the cost of the spelling lookup that finds nothing.
- the earlier table's rows: the samples assessed only (validated request -> ProtocolResult), one
  fixed 50-entry list, eight misspelt / unknown entries, and recognition of every entry alone.

    python benchmarks/bench_deterministic.py --baseline HEAD [--rounds 5] [--runs 2000]
    python benchmarks/bench_deterministic.py --baseline none      # this tree only

The baseline is checked out in a temporary git worktree; both trees run in separate processes,
interleaved round by round (A B A B ...) so machine load hits both alike. Reported: the median
over rounds of each round's median time per patient, and CPU time (time.process_time) per
patient, with the ratio after / before and the load average.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from revisions import baseline_tree, load_note, tree_env, trees

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
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_DOSES = ("", " 10 mg", " 5 mg daily", " 500 mg BID", " 20 mg at bedtime", " 1 tab PRN")


def _patient(meds: list[str], base: dict) -> dict:
    p = json.loads(json.dumps(base))
    p["history"]["meds"] = meds
    return p


def _misspell(word: str, rng: random.Random) -> str:
    """One edit (deletion, substitution, transposition) inside the word."""
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(3)
    if op == 0:
        return word[:i] + word[i + 1:]
    if op == 1:
        return word[:i] + rng.choice(_LETTERS) + word[i + 1:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def fifty_lists(product_names: list[str], count: int = 20, seed: int = 20) -> list[list[str]]:
    """Seeded 50-entry medication lists: real product names with doses, about one in ten misspelt and
    one in twenty-five an invented word."""
    rng = random.Random(seed)
    names = [n for n in product_names if n.isalpha() and len(n) >= 6]
    out = []
    for _ in range(count):
        meds = []
        for _ in range(50):
            name, roll = rng.choice(names), rng.random()
            if roll < 0.04:
                name = "".join(rng.choice(_LETTERS) for _ in range(rng.randrange(6, 11))).capitalize()
            elif roll < 0.14:
                name = _misspell(name, rng)
            meds.append(name + rng.choice(_DOSES))
        out.append(meds)
    return out


def unknown_words(count: int = 400, seed: int = 30) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_LETTERS) for _ in range(rng.randrange(5, 13))) for _ in range(count)]


def patients() -> dict[str, list]:
    """The benchmark's inputs, from this checkout: every tree is timed on these."""
    from clinreason.protocols.registry import DEFAULT_PROTOCOL, get_spec, samples
    from clinreason.samples import load_sample

    every = [load_sample(n) for n in samples()]
    base = load_sample("uncomplicated")
    formulary = get_spec(DEFAULT_PROTOCOL).formulary
    products = sorted({t for d in formulary.drugs.values() for t in d.terms})
    return {"samples": every, "uti": [p for p in every if "protocol" not in p],
            "fifty_lists": [_patient(m, base) for m in fifty_lists(products)],
            "fifty": [_patient(FIFTY_MEDS, base)], "hard": [_patient(HARD_ENTRIES, base)],
            "unknown": unknown_words()}


def worker(runs: int, given: dict[str, list]) -> dict[str, dict[str, float]]:
    """Run every workload in this process (whichever clinreason is on sys.path) and return figures in us."""
    from clinreason import assess
    from clinreason.assessment import validate
    from clinreason.formulary import core as formulary
    from clinreason.protocols.registry import DEFAULT_PROTOCOL, get_spec

    default = get_spec(DEFAULT_PROTOCOL).formulary
    # Every cache of recognition results this tree has: "cold" means each entry is read from scratch.
    caches = [getattr(formulary, name) for name in ("_match_cached", "_find_cached", "_first_token") if hasattr(formulary, name)]

    def clear() -> None:
        for cache in caches:
            cache.cache_clear()

    def det(d: object, p: object) -> object:
        return assess(d, mode="deterministic")

    def evaluate(d: object, p: object) -> object:
        return p.evaluate()  # type: ignore[attr-defined]

    def match(d: object, p: object) -> object:
        return default.match(p)  # type: ignore[arg-type]

    raw = given["samples"]
    uti = given["uti"]
    parsed = [validate(p) for p in uti]
    workloads = {
        "(a) samples: parse + assess": (raw, raw, det, False),
        "(a) samples: parse + assess, cold match": (raw, raw, det, True),
        "(b) 50-medication lists: parse + assess, cold match": (given["fifty_lists"], given["fifty_lists"], det, True),
        "(c) unrecognised word: match, cold": (given["unknown"], given["unknown"], match, True),
        "samples: assess only": (uti, parsed, evaluate, False),
        "samples: assess only, cold match": (uti, parsed, evaluate, True),
        "50 medications, cold match": (given["fifty"], [validate(p) for p in given["fifty"]], evaluate, True),
        "misspelt / unknown entries, cold match": (given["hard"], [validate(p) for p in given["hard"]], evaluate, True),
    }
    entries = [e for p in [*given["hard"], *uti] for e in p["history"].get("meds", []) + p["history"].get("allergies", [])]
    workloads["recognition only: one entry, cold match"] = (entries, entries, match, True)
    for p in raw:  # warm the registry, profiles, formularies and term indexes
        assess(p, mode="deterministic")
    default.match("spironolacton")  # and the lazy spelling index (built on the first misspelt word)
    out: dict[str, dict[str, float]] = {}
    for name, (datas, items, fn, cold) in workloads.items():
        ns: list[int] = []
        cpu0 = time.process_time_ns()
        for i in range(runs):
            if cold:
                clear()
            t0 = time.perf_counter_ns()
            fn(datas[i % len(datas)], items[i % len(items)])
            ns.append(time.perf_counter_ns() - t0)
        ordered = sorted(ns)
        out[name] = {"p50": statistics.median(ordered) / 1000, "p95": ordered[int(0.95 * (len(ordered) - 1))] / 1000,
                     "cpu": (time.process_time_ns() - cpu0) / runs / 1000}
    return out


def _run_worker(src: Path, runs: int, patients_file: Path, data_dir: str) -> dict[str, dict[str, float]]:
    r = subprocess.run([sys.executable, __file__, "--worker", "--runs", str(runs), "--patients", str(patients_file)],
                       env=tree_env(src, data_dir), capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(r.stdout.strip().splitlines()[-1])


def _fmt(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.1f} us"


def compare(rev: str | None, runs: int, rounds: int) -> None:
    load_before = load_note()
    with (baseline_tree(rev) if rev else nullcontext(None)) as base_src, tempfile.TemporaryDirectory(prefix="bench-det-") as tmp:
        named = trees(rev, base_src)
        given = Path(tmp) / "patients.json"
        inputs = patients()
        given.write_text(json.dumps(inputs))
        results: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in named}
        for r in range(rounds):
            for name, src in named.items():
                results[name].append(_run_worker(src, runs, given, tmp))
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    load_after = load_note()
    names = list(results)
    workloads = list(results[names[-1]][0])

    def med(name: str, w: str, key: str) -> float:
        return statistics.median(run[w][key] for run in results[name])

    def best(name: str, w: str) -> float:  # the least-disturbed round: robust on a shared machine
        return min(run[w]["cpu"] for run in results[name])

    print(f"deterministic assess: {' vs '.join(names)}, {rounds} interleaved rounds x {runs} runs per workload; "
          f"{len(inputs['samples'])} samples ({len(inputs['uti'])} of the default protocol), {len(inputs['fifty_lists'])} "
          f"50-medication lists, {len(inputs['unknown'])} unrecognised words")
    print(f"before: {load_before}; after: {load_after}\n")
    if len(names) == 1:
        for w in workloads:
            f = {k: med(names[0], w, k) for k in ("p50", "p95", "cpu")}
            print(f"  {w:52s} p50 {_fmt(f['p50']):>10}   p95 {_fmt(f['p95']):>10}   CPU {_fmt(f['cpu']):>10}")
        return
    print("per patient (per word for (c)): median time and CPU, before -> after, ratio after / before")
    for w in (w for w in workloads if w.startswith("(")):
        a, b = ((med(n, w, "p50"), med(n, w, "cpu")) for n in names)
        print(f"  {w:52s} time {_fmt(a[0]):>10} -> {_fmt(b[0]):>10} ({b[0] / a[0]:.2f}x)   "
              f"CPU {_fmt(a[1]):>10} -> {_fmt(b[1]):>10} ({b[1] / a[1]:.2f}x)")
    print(f"\n| workload | {names[0]} p50 / p95 / CPU (us) | working tree p50 / p95 / CPU (us) | CPU ratio, median / best round |")
    print("|---|---|---|---|")
    for w in workloads:
        a, b = (tuple(med(n, w, k) for k in ("p50", "p95", "cpu")) for n in names)
        print(f"| {w} | {a[0]:.1f} / {a[1]:.1f} / {a[2]:.1f} | {b[0]:.1f} / {b[1]:.1f} / {b[2]:.1f} | "
              f"{b[2] / a[2]:.2f}x / {best(names[1], w) / best(names[0], w):.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--baseline", default="HEAD", metavar="REV", help="the revision to compare with ('none': this tree only)")
    ap.add_argument("--compare", metavar="REV", help="the same as --baseline (the earlier name)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--patients", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.runs, json.loads(args.patients.read_text()))))
        return
    rev = args.compare or args.baseline
    compare(None if rev.lower() == "none" else rev, args.runs, args.rounds)


if __name__ == "__main__":
    main()
