"""Cold start of the `clinreason` command: a new process per run, as a user runs it.

    python benchmarks/bench_cold.py [--baseline REV] [--runs N] [--top N]

Each tree (REV's, default HEAD, in a temporary git worktree, and the working tree) gets its own
data dir, pre-warmed once: `kb build`, then `assess --sample uncomplicated` (so its retrieval is
cached on disk and `show` has an assessment to read). Then, for --runs rounds, every command runs
once per tree, the trees interleaved so machine load affects both alike:

    assess --sample uncomplicated                       full mode, retrieval cached
    assess --sample uncomplicated --mode deterministic
    samples
    show ID                                             the pre-warm's assessment
    --help

Prints, per command, the median wall time and CPU time (the child's user + system rusage) of
each tree, the ratio (working tree / baseline), and the load. Then the working tree's biggest
import costs in a cold full assess (`python -X importtime`): the modules by cumulative time, and
self time summed per package, to show what remains. `--baseline ''` runs the working tree only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from revisions import baseline_tree, load_note, tree_env, trees  # noqa: E402

SAMPLE = "uncomplicated"
COMMANDS: dict[str, list[str]] = {
    f"assess --sample {SAMPLE}": ["assess", "--sample", SAMPLE],
    f"assess --sample {SAMPLE} --mode deterministic": ["assess", "--sample", SAMPLE, "--mode", "deterministic"],
    "samples": ["samples"],
    "show ID": ["show", "{id}"],
    "--help": ["--help"],
}
_IMPORT = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _cli(env: dict[str, str], args: list[str], *, check: bool = True, stderr: int | None = subprocess.DEVNULL,
         flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *flags, "-m", "clinreason.cli", *args], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=900)
    if check and done.returncode != 0:
        raise SystemExit(f"clinreason {' '.join(args)} exited {done.returncode}")
    return done


def prewarm(env: dict[str, str]) -> str:
    """Build the index and run the sample once (caching its retrieval); returns the assessment id."""
    _cli(env, ["kb", "build"])
    return json.loads(_cli(env, ["assess", "--sample", SAMPLE, "--json"]).stdout)["id"]


def timed(env: dict[str, str], args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the child) of one cold run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    _cli(env, args)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_costs(env: dict[str, str], top: int) -> None:
    """The biggest imports of a cold full assess: by cumulative time, and self time per package."""
    done = _cli(env, COMMANDS[f"assess --sample {SAMPLE}"], stderr=subprocess.PIPE, flags=("-X", "importtime"))
    rows = [(int(m[2]), int(m[1]), m[4]) for m in map(_IMPORT.match, done.stderr.splitlines()) if m]
    total = sum(s for _, s, _ in rows)
    print(f"\nworking tree, cold `assess --sample {SAMPLE}` under -X importtime: {len(rows)} modules, "
          f"{total / 1000:.0f} ms of import (self times summed; -X importtime inflates them)")
    print(f"  {'cumulative ms':>13} {'self ms':>8}  module")
    for cum, own, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cum / 1000:13.1f} {own / 1000:8.1f}  {name}")
    packages: dict[str, int] = {}
    for _, own, name in rows:
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "clinreason" else parts[0]
        packages[key] = packages.get(key, 0) + own
    print(f"  {'self ms':>13}           package (clinreason by subpackage)")
    for key, own in sorted(packages.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {own / 1000:13.1f}           {key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", metavar="REV", default="HEAD", help="the commit to compare with (default HEAD; '' for none)")
    ap.add_argument("--runs", type=int, default=5, help="rounds; each runs every command once per tree")
    ap.add_argument("--top", type=int, default=15, help="import rows to print")
    args = ap.parse_args()

    print(load_note())
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # Both trees pay it alike; a user's install has its bytecode (measured: about 50 ms per full assess).
        print("PYTHONDONTWRITEBYTECODE is set: every run compiles the clinreason modules it imports from source")
    base = baseline_tree(args.baseline) if args.baseline else nullcontext(None)
    with base as base_src, tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        names = trees(args.baseline, base_src)
        envs = {label: tree_env(src, Path(tmp) / f"data-{i}") for i, (label, src) in enumerate(names.items())}
        ids = {label: prewarm(env) for label, env in envs.items()}
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.runs):
            for command, argv in COMMANDS.items():
                for label, env in envs.items():
                    run = [a.format(id=ids[label]) for a in argv]
                    samples.setdefault((command, label), []).append(timed(env, run))
        print(f"{args.runs} cold runs per command and tree, interleaved; medians; {load_note()}")
        labels = list(envs)
        head = "".join(f"{label[:14]:>16}" for label in labels)
        print(f"{'command':<52}{'':>6}{head}" + ("           ratio" if len(labels) == 2 else ""))
        for command in COMMANDS:
            for i, what in enumerate(("wall s", "CPU s")):
                med = [statistics.median(x[i] for x in samples[command, label]) for label in labels]
                ratio = f"{med[1] / med[0]:16.2f}" if len(med) == 2 else ""
                print(f"{command if i == 0 else '':<52}{what:>6}" + "".join(f"{m:16.3f}" for m in med) + ratio)
        import_costs(envs["working tree"], args.top)
        print(load_note())


if __name__ == "__main__":
    main()
