"""An earlier commit's src/, exported for before/after benchmarks run in one session."""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export_src(rev: str, into: Path) -> Path:
    """`git archive REV src` unpacked under `into`; returns the src/ folder (put it first on PYTHONPATH)."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"
