"""An earlier commit checked out beside the working tree, for before/after benchmarks run in one session.

    with baseline_tree("HEAD~1") as src:   # a temporary `git worktree` of that commit; its src/ folder
        env = tree_env(src, data_dir)      # put that src/ first on PYTHONPATH in a child process

Every benchmark's `--baseline REV` uses this: the baseline and the working tree run in separate
processes, interleaved, in the same session, so machine load affects both alike.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent


@contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    """`git worktree add --detach` of REV in a temporary folder, removed afterwards; yields its src/."""
    tmp = Path(tempfile.mkdtemp(prefix="clinreason-baseline-"))
    tree = tmp / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), rev], check=True)
    try:
        yield tree / "src"
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False, capture_output=True)


def trees(rev: str | None, baseline_src: Path | None) -> dict[str, Path]:
    """The trees a benchmark runs, baseline first: {"REV": its src, "working tree": ROOT/src}."""
    out = {rev: baseline_src} if rev and baseline_src else {}
    return {**out, "working tree": ROOT / "src"}


def tree_env(src: Path, data_dir: str | Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child process that imports clinreason from `src` (before the editable
    install), with the benchmarks and tests folders importable, and its own data dir."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(BENCH), str(ROOT / "tests")]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WEAVE_DISABLED": "true",
           "WANDB_ERROR_REPORTING": "false", "ANONYMIZED_TELEMETRY": "false", **extra}
    if data_dir is not None:
        env["CLINREASON_DATA_DIR"] = str(data_dir)
    return env


def load_note() -> str:
    """The machine's load averages, for the line every benchmark prints beside its figures."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"

