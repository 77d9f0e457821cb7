"""`retrieve(query, k, filters)`: the knowledge base as the agents and users see it."""

from __future__ import annotations

import threading
from functools import cache

from pydantic import BaseModel, ConfigDict

from clinreason.config import Settings, get_settings
from clinreason.knowledge.chunking import Chunk, all_chunks
from clinreason.knowledge.index import Filters, KnowledgeIndex, Progress


class Passage(BaseModel):
    """A retrieved chunk: what a citation points at."""

    model_config = ConfigDict(frozen=True)

    chunk_id: str
    text: str
    score: float
    source: str
    title: str
    section: str
    kind: str
    version: str

    @classmethod
    def from_chunk(cls, chunk: Chunk, score: float) -> Passage:
        return cls(
            chunk_id=chunk.id, text=chunk.text, score=score, source=chunk.source, title=chunk.title,
            section=chunk.section, kind=chunk.kind, version=chunk.version,
        )


_lock = threading.Lock()
_indexes: dict[tuple[str, str | None, str], KnowledgeIndex] = {}


def get_index(settings: Settings | None = None, progress: Progress | None = None) -> KnowledgeIndex:
    """The process-wide index for these settings, built on first use if missing or stale."""
    settings = settings or get_settings()
    key = (str(settings.data_dir), settings.chroma_url, settings.chroma_collection)
    with _lock:
        index = _indexes.get(key)
        if index is None:
            index = KnowledgeIndex(all_chunks(), settings)
            index.ensure_built(progress)
            _indexes[key] = index
    return index


def retrieve(query: str, k: int = 5, filters: Filters | None = None, *, method: str = "hybrid", settings: Settings | None = None) -> list[Passage]:
    """Top-k passages for a question. filters: kind, agent, jurisdiction, doc_id (str or list)."""
    if not query.strip():
        raise ValueError("query must not be empty")
    if k < 1:
        raise ValueError("k must be at least 1")
    index = get_index(settings)
    return [Passage.from_chunk(index.by_id[cid], score) for cid, score in index.search(query, k, filters, method)]


@cache
def chunk_by_id() -> dict[str, Chunk]:
    return {c.id: c for c in all_chunks()}


def get_chunk(chunk_id: str) -> Chunk:
    try:
        return chunk_by_id()[chunk_id]
    except KeyError:
        raise KeyError(f"no chunk {chunk_id!r}") from None
