"""Are the results the same? Every bundled sample and vignette through both trees, compared.

    python benchmarks/same_results.py --baseline REV [--backend rules|llm] [--only NAME,...]

Each tree (REV's, in a temporary git worktree, and the working tree) runs in its own process
with its own data dir: every sample and vignette in full mode (approved at sign-off when the
plan waits for it, acknowledging its blocking checks) and in deterministic mode. The records
(report Markdown, plan, rounds, citations, audit, ...) are compared after replacing what differs
by nature: assessment ids, wall-clock times. Prints each difference; exit 1 if there is any.
With `--backend llm` both run against the scripted local server (the cooperative model).

A speed change must leave this at "0 differ".
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from revisions import baseline_tree, load_note, tree_env, trees  # noqa: E402

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:\+00:00|Z)?")
_DATE_UTC = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})? UTC")


def normalise(obj: Any, ids: set[str]) -> Any:
    """The record with ids and wall-clock times replaced, so two runs of one case compare equal."""
    text = json.dumps(obj, sort_keys=True, indent=1)
    for i in ids:
        text = text.replace(i, "<id>").replace(i[:8], "<id8>")
    text = _TIME.sub("<time>", text)
    text = _DATE_UTC.sub("<time>", text)
    return json.loads(text)


def _cases() -> list[tuple[str, dict[str, Any]]]:
    from clinreason.evaluation.harness import load_vignettes
    from clinreason.samples import load_sample, sample_index

    out = [(f"sample {n}", load_sample(n)) for n in sample_index()]
    return out + [(f"vignette {v.id}", v.patient) for v in load_vignettes()]


def worker(only: set[str] | None, out: Path) -> None:
    """Run every case in this process's tree; write {case: normalised record}."""
    from clinreason import assess
    from clinreason.config import Settings
    from clinreason.pipeline import Pipeline

    pipeline = Pipeline(Settings())
    records: dict[str, Any] = {}
    for name, patient in _cases():
        if only and name.split(" ", 1)[1] not in only:
            continue
        try:
            a = pipeline.run(patient)
            full = a.model_dump(mode="json")
            signed = None
            if a.status == "awaiting_signoff":
                checks = [c.entry for c in a.plan.blocking_checks]
                signed = pipeline.signoff(a.id, "approve", "RPh-1", "same-results check", acknowledged=checks).model_dump(mode="json")
            records[name] = normalise({"full": full, "signed": signed,
                                       "deterministic": assess(patient, mode="deterministic").model_dump(mode="json")}, {a.id})
        except Exception as exc:  # an invalid vignette is a result too: its error must be the same
            records[name] = {"error": f"{type(exc).__name__}: {exc}"}
    out.write_text(json.dumps(records, sort_keys=True), "utf-8")


def run_tree(src: Path, only: str | None, backend: str, base_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="clinreason-same-") as tmp:
        extra = {"CLINREASON_AGENT_BACKEND": backend}
        if base_url:
            extra |= {"CLINREASON_LLM_BASE_URL": base_url, "CLINREASON_LLM_API_KEY": "test",
                      "CLINREASON_DOCTOR_MODEL": "doctor-model", "CLINREASON_PHARMACIST_MODEL": "pharmacist-model"}
        out = Path(tmp) / "records.json"
        cmd = [sys.executable, __file__, "--worker", str(out)] + (["--only", only] if only else [])
        subprocess.run(cmd, env=tree_env(src, Path(tmp) / "data", **extra), check=True)
        return json.loads(out.read_text("utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", metavar="REV", default="HEAD", help="the commit to compare the working tree with (default HEAD)")
    ap.add_argument("--backend", choices=["rules", "llm"], default="rules")
    ap.add_argument("--only", help="comma-separated sample names or vignette ids")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(set(args.only.split(",")) if args.only else None, args.worker)
        return
    server = None
    if args.backend == "llm":
        from bench_pipeline import cooperative
        from fake_openai import FakeOpenAI

        server = FakeOpenAI(handler=cooperative).__enter__()
    try:
        base_url = server.base_url if server else None
        with baseline_tree(args.baseline) as base_src:
            runs = {name: run_tree(src, args.only, args.backend, base_url) for name, src in trees(args.baseline, base_src).items()}
    finally:
        if server:
            server.__exit__(None, None, None)
    (before, after) = runs.values()
    differ = 0
    for case in sorted(set(before) | set(after)):
        a, b = before.get(case), after.get(case)
        if a != b:
            differ += 1
            diff = difflib.unified_diff(json.dumps(a, indent=1, sort_keys=True).splitlines(),
                                        json.dumps(b, indent=1, sort_keys=True).splitlines(), args.baseline, "working tree", lineterm="", n=1)
            print(f"--- {case} differs:\n" + "\n".join(list(diff)[:60]))
    print(f"{len(after)} cases ({args.backend} backend): {differ} differ between {args.baseline} and the working tree; {load_note()}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    os.environ.setdefault("WEAVE_DISABLED", "true")
    main()
