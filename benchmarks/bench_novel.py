"""The first assessment of patients no one has seen, in a warm server: does the request path load a model?

    python benchmarks/bench_novel.py [--baseline REV] [--patients 50] [--rounds 2]

For the baseline tree (REV in a temporary git worktree) and the working tree: `clinreason kb build`
into a data dir of its own, then, each round, a copy of that data dir (so the patients are new to its
caches) served by `clinreason serve` (one worker, warmed as benchmarks/bench_api.py's `Served` does),
and the first full assessment of each of N patients whose combinations of fired rules no bundled
sample or vignette has, across both protocols (seeded). Rounds alternate the trees. Prints p50/p99
latency and the worker's CPU per request per tree (medians over rounds), whether torch was loaded in
the server (its shared library in /proc/<pid>/maps) and its RSS growth, and the load line.
Target (issue 20, part 1): p99 within 3x of p50 in the working tree, and no torch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_api import Served, cpu_seconds, server_pids
from revisions import ROOT, baseline_tree, load_note, tree_env, trees

UTI_FLAGS = ("fever", "rigors", "flank_pain", "back_pain", "nausea_vomiting", "systemic")
LYME_SYMPTOMS = ("erythema_migrans", "fever", "chills", "headache", "stiff_neck", "fatigue", "decreased_appetite",
                 "muscle_joint_aches", "joint_swelling", "swollen_lymph_nodes")


def _cystitis(rng: random.Random) -> dict:
    from patients import BASE_PATIENT

    p = {**BASE_PATIENT, "red_flags": dict(BASE_PATIENT["red_flags"]), "history": dict(BASE_PATIENT["history"]),
         "symptoms": dict(BASE_PATIENT["symptoms"])}
    if rng.random() < 0.4:  # an urgent referral: two to four red flags
        for flag in rng.sample(UTI_FLAGS, rng.randint(2, 4)):
            p["red_flags"][flag] = True
        return p
    factors = rng.sample(["male", "pregnant", "young", "catheter", "stones", "renal", "confusion", "hematuria",
                          "immunocompromised"], rng.randint(2, 4))
    if "male" in factors:
        p.update(sex="male", pregnancy_status="not_applicable")
    elif "pregnant" in factors:
        p["pregnancy_status"] = "pregnant"
    if "young" in factors:
        p["age"] = 14
    for name in ("catheter", "stones", "immunocompromised"):
        p["history"][name] = name in factors
    if "renal" in factors:
        p["renal_function_summary"] = "impaired"
    p["symptoms"].update(confusion="confusion" in factors, gross_hematuria="hematuria" in factors)
    return p


def _lyme(rng: random.Random) -> dict:
    attached = rng.random() < 0.3
    tick = {"still_attached": attached, "estimated_hours_attached": 40, "higher_risk_area": True, "location": "Kingston, ON"}
    symptoms = {k: False for k in LYME_SYMPTOMS}
    missed: list[str] = []
    if rng.random() < 0.7:  # a symptomatic referral: two to five symptoms
        for s in rng.sample(LYME_SYMPTOMS, rng.randint(2, 5)):
            symptoms[s] = True
    else:  # no prophylaxis: two or three criteria not met
        missed = rng.sample(["window", "area", "short"], rng.randint(2, 3))
        tick.update(still_attached=False, higher_risk_area="area" not in missed,
                    estimated_hours_attached=10 if "short" in missed else 40)
    if not tick["still_attached"]:
        tick["hours_since_removal"] = 90 if "window" in missed else 20
    return {"protocol": "lyme-pep", "locale_code": rng.choice(["CA-ON", "US"]), "age": rng.randint(20, 70), "sex": "female",
            "pregnancy_status": "not_pregnant", "breastfeeding": False, "weight_kg": 70, "tick": tick, "symptoms": symptoms,
            "history": {"allergies": [], "meds": []}}


def novel_patients(n: int, seed: int = 20) -> list[dict]:
    """n requests, alternating protocols, each firing a combination of rules (in its profile) that no bundled
    sample or vignette fires, and no two alike."""
    from clinreason.evaluation.harness import load_vignettes
    from clinreason.protocols.registry import resolve
    from clinreason.samples import load_sample, sample_index

    def fired(request: dict) -> tuple[str, ...]:
        result = resolve(request).evaluate()
        return (result.profile_id, result.decision, *(h.rule_id for h in result.rules_fired))

    seen = {fired(load_sample(name)) for name in sample_index()} | {fired(v.patient) for v in load_vignettes()}
    rng, out = random.Random(seed), []
    while len(out) < n:
        request = (_cystitis if len(out) % 2 == 0 else _lyme)(rng)
        key = fired(request)
        if key not in seen and len(key) > 3:  # profile, decision and at least two rules
            seen.add(key)
            out.append(request)
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def torch_loaded(pids: list[int]) -> bool:
    """Whether any server process has torch's shared library mapped: imported, whatever for."""
    for pid in pids:
        try:
            if "libtorch" in Path(f"/proc/{pid}/maps").read_text():
                return True
        except (FileNotFoundError, PermissionError):
            pass
    return False


async def first_assessments(server: Served, patients: list[dict]) -> list[float]:
    headers = {"Authorization": f"Bearer {server.key}"}
    out = []
    async with httpx.AsyncClient(timeout=120) as client:
        for p in patients:
            t0 = time.perf_counter()
            r = await client.post(f"{server.url}/v1/assessments", params={"mode": "full"}, json=p, headers=headers)
            out.append((time.perf_counter() - t0) * 1000)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
    return out


def measure(src: Path, template: Path, patients: list[dict]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="clinreason-novel-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(template, data)
        with Served(src, 1, data) as server:
            pids = server_pids(server.proc.pid)
            worker = pids[-1]
            rss0, cpu0, torch0 = rss_mb(worker), cpu_seconds(pids), torch_loaded(pids)
            lat = sorted(asyncio.run(first_assessments(server, patients)))
            return {"p50": statistics.median(lat), "p99": lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))], "max": lat[-1],
                    "cpu": (cpu_seconds(pids) - cpu0) / len(patients) * 1000, "rss": rss_mb(worker) - rss0,
                    "torch_before": float(torch0), "torch": float(torch_loaded(pids))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", metavar="REV", default="HEAD")
    ap.add_argument("--patients", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    patients = novel_patients(args.patients)
    results: dict[str, list[dict[str, float]]] = {}
    with baseline_tree(args.baseline) as base_src, tempfile.TemporaryDirectory(prefix="clinreason-novel-kb-") as tmp:
        sources = trees(args.baseline, base_src)
        templates = {}
        for i, (name, src) in enumerate(sources.items()):
            templates[name] = Path(tmp) / f"data-{i}"
            subprocess.run([sys.executable, "-m", "clinreason.cli", "kb", "build"], env=tree_env(src, templates[name]), check=True,
                           stdout=subprocess.DEVNULL, cwd=tempfile.gettempdir())
        for r in range(args.rounds):
            for name, src in sources.items():
                results.setdefault(name, []).append(measure(src, templates[name], patients))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in results[name])

    print(f"First full assessment of {len(patients)} novel patients (both protocols), warm server, one worker, "
          f"{args.rounds} interleaved rounds (medians)")
    print("| tree | p50 ms | p99 ms | max ms | p99/p50 | worker CPU ms/req | torch in server (before -> after) | worker RSS growth MB |")
    print("|---|---|---|---|---|---|---|---|")
    for name in results:
        torch = f"{'yes' if med(name, 'torch_before') else 'no'} -> {'yes' if max(x['torch'] for x in results[name]) else 'no'}"
        print(f"| {name} | {med(name, 'p50'):.1f} | {med(name, 'p99'):.1f} | {med(name, 'max'):.1f} | "
              f"{med(name, 'p99') / med(name, 'p50'):.2f}x | {med(name, 'cpu'):.1f} | {torch} | {med(name, 'rss'):.0f} |")
    (a, b) = (results[n] for n in results) if len(results) == 2 else (None, None)
    if a and b:
        print(f"p99 ratio working tree / {args.baseline}: {statistics.median(x['p99'] for x in b) / statistics.median(x['p99'] for x in a):.2f}")
    print(load_note())


if __name__ == "__main__":
    os.environ.setdefault("WEAVE_DISABLED", "true")
    sys.path.insert(0, str(ROOT / "tests"))
    main()
