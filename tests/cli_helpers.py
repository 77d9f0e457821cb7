"""Run the `clinreason` command as a user runs it: a new process, no stdin."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clinreason.cli", *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
