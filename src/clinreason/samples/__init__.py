"""Bundled sample patients (JSON under clinreason/samples/)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

_PKG = "clinreason.samples"


@cache
def sample_index() -> dict[str, str]:
    """Sample name -> one-line description."""
    return json.loads(resources.files(_PKG).joinpath("index.json").read_text("utf-8"))


def load_sample(name: str) -> dict[str, Any]:
    if name not in sample_index():
        raise KeyError(f"unknown sample {name!r}; available: {', '.join(sample_index())}")
    return json.loads(resources.files(_PKG).joinpath(f"{name}.json").read_text("utf-8"))
