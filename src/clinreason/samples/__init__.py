"""Bundled sample patients: each protocol's `samples/` folder, one namespace of names."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from clinreason.protocols.registry import DEFAULT_PROTOCOL, sample, samples


@cache
def sample_index() -> dict[str, str]:
    """Sample name -> one-line description."""
    return {name: text for name, (_, text) in samples().items()}


def sample_protocol(name: str) -> str:
    return sample(name)[0].id


def load_sample(name: str) -> dict[str, Any]:
    """The sample's request JSON. A sample of a protocol other than the default names it in `protocol`."""
    try:
        spec = sample(name)[0]  # (loads only the protocols up to the sample's own)
    except KeyError:
        raise KeyError(f"unknown sample {name!r}; available: {', '.join(sample_index())}") from None
    data = json.loads(spec.read_text("samples", f"{name}.json"))
    if spec.id != DEFAULT_PROTOCOL and "protocol" not in data:
        data = {"protocol": spec.id, **data}
    return data
