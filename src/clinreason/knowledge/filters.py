"""Filters and fusion constants of the hybrid index: what a cache key and a result need, without
numpy, Chroma or BM25 (those load only when a search misses the result cache: knowledge/index.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clinreason.knowledge.chunking import Chunk
from clinreason.knowledge.corpus import KINDS

FILTER_KEYS = ("kind", "option", "jurisdiction", "doc_id")
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
# At most this many passages from one document in a hybrid top-k, so the rule,
# the monograph and the guideline can all appear (measured on the eval set).
MAX_PER_DOC = 3
# The rule-linked list in the fusion: its weight relative to BM25 and dense (1.0
# each), and how many passages one linked rule may add (a broad rule such as
# the rule that states the choice of option tags a dozen passages and would otherwise flood the list).
LINK_WEIGHT = 1.5
LINK_PER_RULE = 4
# How deep each of BM25 and dense is read before fusing. A fixed depth keeps the
# top five the same for any k up to FUSION_DEPTH / 4 (a depth of 4k once made
# them differ); a larger k reads 4k deep. 100 of today's 148 chunks.
FUSION_DEPTH = 100
Filters = Mapping[str, str | Sequence[str]]
Progress = Callable[[str, int, int], None]


def _values(v: str | Sequence[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def check_filters(filters: Filters | None, option_ids: Sequence[str] = ()) -> dict[str, list[str]]:
    """Normalise filters to lists; unknown keys, kinds or options are errors, not empty results."""
    if not filters:
        return {}
    unknown = set(filters) - set(FILTER_KEYS)
    if unknown:
        raise ValueError(f"unknown filter key(s) {sorted(unknown)}; allowed: {', '.join(FILTER_KEYS)}")
    out = {k: _values(v) for k, v in filters.items()}
    allowed = {"kind": KINDS, "option": tuple(option_ids)}
    for key, choices in allowed.items():
        bad = [v for v in out.get(key, []) if v not in choices]
        if bad and choices:
            raise ValueError(f"unknown {key} {bad}; choose from {', '.join(choices)}")
    return out


def chroma_where(filters: dict[str, list[str]]) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    for key, values in filters.items():
        if key == "option":
            ors = [{f"option_{a}": True} for a in values]
            clauses.append(ors[0] if len(ors) == 1 else {"$or": ors})
        else:
            clauses.append({key: {"$in": values}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def chunk_matches(chunk: Chunk, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if key == "option":
            if not set(values) & set(chunk.options):
                return False
        elif getattr(chunk, key) not in values:
            return False
    return True
