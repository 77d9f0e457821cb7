"""Does a passage support a sentence? Shared by the agents (to choose what to
cite) and by the graph's citation check (to drop what does not hold)."""

from __future__ import annotations

import re
from functools import lru_cache

from clinreason.knowledge.chunking import Chunk
from clinreason.protocols.registry import DEFAULT_PROTOCOL, get_spec

_THRESHOLD = re.compile(r"\b(\d+(?:\.\d+)?)\s*(ml/min|years?|days?|hours?|mg|g)\b", re.IGNORECASE)


@lru_cache(maxsize=8192)
def entities(text: str, protocol: str = DEFAULT_PROTOCOL) -> frozenset[str]:
    """Drugs (as ingredients), classes and numeric thresholds named in a text."""
    m = get_spec(protocol).formulary.find(text)
    found = {f"drug:{i}" for i in m.ingredients} | {f"class:{c}" for c in m.classes}
    found |= {f"value:{float(n):g} {u.lower().rstrip('s')}" for n, u in _THRESHOLD.findall(text)}
    return frozenset(found)


def supports(sentence: str, chunk: Chunk) -> bool:
    """True when the sentence names nothing checkable, or the chunk names at least one of what it names."""
    named = entities(sentence, chunk.protocol)
    return not named or bool(named & entities(chunk.embed_text, chunk.protocol))
