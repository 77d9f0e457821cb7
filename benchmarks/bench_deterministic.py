"""Time the deterministic protocol assessment per patient.

Two figures per run: with input parsing (raw JSON dict -> Assessment, what an
integrator pays) and without (validated Patient -> ProtocolResult, the
protocol node alone). Patients are the bundled samples, cycled.

    python benchmarks/bench_deterministic.py [--runs 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from clinreason import assess
from clinreason.assessment import assess_deterministic, validate
from clinreason.samples import load_sample, sample_index


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = statistics.median(ordered) / 1000
    p95 = ordered[int(0.95 * (len(ordered) - 1))] / 1000
    return p50, p95


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20000)
    args = ap.parse_args()

    raw = [load_sample(n) for n in sample_index()]
    parsed = [validate(p) for p in raw]
    for p in raw:  # warm caches (profile, formulary, term index)
        assess(p, mode="deterministic")

    with_parse, without_parse = [], []
    for i in range(args.runs):
        data, patient = raw[i % len(raw)], parsed[i % len(parsed)]
        t0 = time.perf_counter_ns()
        assess(data, mode="deterministic")
        t1 = time.perf_counter_ns()
        assess_deterministic(patient)
        t2 = time.perf_counter_ns()
        with_parse.append(t1 - t0)
        without_parse.append(t2 - t1)

    print(f"deterministic assess, {args.runs} runs over {len(raw)} sample patients")
    for label, values in (("parse + assess (dict -> Assessment)", with_parse), ("assess only (Patient -> ProtocolResult)", without_parse)):
        p50, p95 = _percentiles(values)
        print(f"  {label:42s} p50 {p50:7.1f} us   p95 {p95:7.1f} us")


if __name__ == "__main__":
    main()
