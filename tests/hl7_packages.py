"""HL7's own CC0 example packages, fetched from the npm registry (nothing copied into the repository).

The packages declare dependencies that npm cannot resolve (`hl7.fhir.r4.core@4.0.1` is not on the
registry), so they are fetched with `npm pack` (the tarball alone) and unpacked here. The cache
directory is `$CLINREASON_HL7_PACKAGES` or `.cache/hl7` in the checkout; `.ci/run` fills it first:

    python tests/hl7_packages.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGES = {"r4_examples": "hl7.fhir.r4.examples@4.0.1", "ips": "hl7.fhir.uv.ips@2.0.0"}


def cache_dir() -> Path:
    default = Path(__file__).resolve().parents[1] / ".cache" / "hl7"
    return Path(os.environ.get("CLINREASON_HL7_PACKAGES") or default)


def ensure() -> dict[str, Path]:
    """name -> the unpacked `package/` folder of each package, fetching what is missing."""
    out: dict[str, Path] = {}
    for name, spec in PACKAGES.items():
        target = cache_dir() / spec.replace("@", "-")
        if not (target / "package" / "package.json").is_file():
            _fetch(spec, target)
        out[name] = target / "package"
    return out


def _fetch(spec: str, target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is needed to fetch {spec} (HL7's example package); install Node.js and npm")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", "--silent", spec, "--pack-destination", tmp], capture_output=True, text=True,
                              timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"npm pack {spec} failed: {done.stderr.strip()[-500:]}")
        tarball = Path(tmp) / done.stdout.strip().splitlines()[-1]
        staging = Path(tmp) / "unpacked"
        with tarfile.open(tarball) as tar:
            tar.extractall(staging, filter="data")  # the data filter refuses links and paths outside the folder
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(staging), target)


if __name__ == "__main__":
    for name, path in ensure().items():
        print(f"{name}: {path} ({sum(1 for _ in path.rglob('*.json'))} JSON files)", file=sys.stderr)
