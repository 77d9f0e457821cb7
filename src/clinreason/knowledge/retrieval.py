"""`retrieve(query, k, filters)`: the knowledge base as the agents and users see it."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from clinreason.config import Settings, get_settings
from clinreason.knowledge.chunking import Chunk, all_chunks, current_kb_version
from clinreason.knowledge.corpus import Scope, all_scopes, default_scope, spec_of
from clinreason.knowledge.embeddings import Embedder, model_id
from clinreason.knowledge.filters import (
    FUSION_DEPTH,
    LINK_PER_RULE,
    LINK_WEIGHT,
    MAX_PER_DOC,
    RRF_K,
    Filters,
    Progress,
    check_filters,
)
from clinreason.knowledge.sqlite_cache import SqliteCache

if TYPE_CHECKING:
    from clinreason.knowledge.index import KnowledgeIndex  # numpy, Chroma, BM25: imported on a result-cache miss only

# Bump when ranking code changes in a way the data hashes and constants cannot see.
# link3: episode counts in a question link the rules that count episodes.
# spell1: misspelt words are repaired first (knowledge/spelling.py).
# facet1: facet words link monograph sections (data/facet_cues.toml).
# named1: a guideline the question names is linked and exempt from the per-document cap.
# neg1: a negated cue ("not pregnant") links nothing.
# scope1: one index per knowledge base; a caution's drugs link its rule as an interaction's do.
RETRIEVAL_ALGO = (
    f"rrf{RRF_K}-depth{FUSION_DEPTH}-cap{MAX_PER_DOC}-spell1-expand1-link3-facet1-named1-neg1-scope1-{LINK_WEIGHT}x{LINK_PER_RULE}"
)
_RANKING_DATA = ("lay_terms.toml", "cues.toml", "facets.toml")  # each protocol's files


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
_indexes: dict[tuple[str, str | None, str, Scope], KnowledgeIndex] = {}
_embedders: dict[str, Embedder] = {}  # one per data dir: every knowledge base shares the model and its query cache


def get_index(settings: Settings | None = None, progress: Progress | None = None, *, force: bool = False,
              scope: Scope | None = None) -> KnowledgeIndex:
    """The process-wide index of one knowledge base for these settings, built on first use if missing or stale.

    force re-embeds every chunk. The index's `last_build` says what the build did.
    """
    from clinreason.knowledge.index import KnowledgeIndex

    settings = settings or get_settings()
    scope = scope or default_scope()
    key = (str(settings.data_dir), settings.chroma_url, settings.chroma_collection, scope)
    with _lock:
        index = _indexes.get(key)
        if index is None:
            index = KnowledgeIndex(all_chunks(scope), settings, _embedder(settings), scope)
            if not force:
                index.ensure_built(progress)
        if force:
            index.build(progress, force=True)
        _indexes[key] = index  # only once built: a failed build is retried on the next call
    return index


def _embedder(settings: Settings) -> Embedder:
    key = str(settings.data_dir)
    if key not in _embedders:
        _embedders[key] = Embedder(settings.data_dir / "cache" / "query-embeddings.sqlite")
    return _embedders[key]


@cache
def retrieval_fingerprint(scope: Scope | None = None) -> str:
    """Everything a ranking in one knowledge base depends on: chunks, model, formulary, lay terms,
    cues, algorithm."""
    scope = scope or default_scope()
    spec = spec_of(scope)
    hashes = tuple(hashlib.sha256(spec.read_text(name).encode()).hexdigest() if spec.has_file(name) else "-" for name in _RANKING_DATA)
    parts = (current_kb_version(scope), model_id(), spec.formulary.version, *hashes, RETRIEVAL_ALGO)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class ResultCache(SqliteCache[list[tuple[str, float]]]):
    """(fingerprint, query, k, filters, method) -> ranked chunk ids, in sqlite.

    A warm or cold process whose searches were all seen before neither opens
    Chroma nor imports torch; the fingerprint makes stale entries unreachable.
    """

    def __init__(self, settings: Settings):
        super().__init__(
            settings.data_dir / "cache" / "retrieval.sqlite", "results",
            encode=json.dumps, decode=lambda raw: [(c, s) for c, s in json.loads(raw)],
        )

    @staticmethod
    def key(query: str, k: int, filters: Filters | None, method: str, scope: Scope, parts: Sequence[str] = ()) -> str:
        f = {key: sorted(v) for key, v in sorted(check_filters(filters).items())}
        joined = [list(parts)] if len(parts) > 1 else []  # a one-text search keeps the key it always had
        return json.dumps([retrieval_fingerprint(scope), *scope, query, k, f, method, *joined], separators=(",", ":"))


_caches: dict[str, ResultCache] = {}


def _result_cache(settings: Settings) -> ResultCache:
    with _lock:
        cache_ = _caches.get(str(settings.data_dir))
        if cache_ is None:
            cache_ = _caches[str(settings.data_dir)] = ResultCache(settings)
    return cache_


def search_ids(
    query: str, k: int = 5, filters: Filters | None = None, *, method: str = "hybrid", settings: Settings | None = None,
    progress: Progress | None = None, scope: Scope | None = None, parts: Sequence[str] = (),
) -> list[tuple[str, float]]:
    """Ranked (chunk id, score) inside one knowledge base, served from the result cache when seen before.

    progress reports a first-use index build, if a cache miss needs one. parts: the one-rule
    queries a query over several fired rules joins (`KnowledgeIndex.search`).
    """
    if not query.strip():
        raise ValueError("query must not be empty")
    if k < 1:
        raise ValueError("k must be at least 1")
    settings = settings or get_settings()
    scope = scope or default_scope()
    results = _result_cache(settings)
    key = results.key(query, k, filters, method, scope, parts)
    hits = results.get(key)
    if hits is None:
        hits = get_index(settings, progress, scope=scope).search(query, k, filters, method, parts)
        results.put(key, hits)
    return hits


def retrieve(query: str, k: int = 5, filters: Filters | None = None, *, method: str = "hybrid", settings: Settings | None = None,
             scope: Scope | None = None) -> list[Passage]:
    """Top-k passages for a question in one knowledge base (default: the default protocol's).
    filters: kind, option, jurisdiction, doc_id (str or list)."""
    chunks = chunk_by_id()
    hits = search_ids(query, k, filters, method=method, settings=settings, scope=scope)
    return [Passage.from_chunk(chunks[cid], score) for cid, score in hits]


class ChunksById(Mapping[str, Chunk]):
    """Every chunk of every knowledge base, by its scoped id (`protocol/profile/doc#section`).

    A lookup chunks only the knowledge base its id names: an assessment (whose evidence and
    cached searches all lie in one knowledge base) parses and links no other. Iterating, or
    `len`, chunks them all, in `every_chunk` order.
    """

    def __getitem__(self, chunk_id: str) -> Chunk:
        scope = _scope_named(chunk_id)
        found = _scope_chunks(scope).get(chunk_id) if scope is not None else None
        if found is None:
            raise KeyError(chunk_id)
        return found

    def __iter__(self) -> Iterator[str]:
        for scope in all_scopes():
            yield from _scope_chunks(scope)

    def __len__(self) -> int:
        return sum(len(_scope_chunks(scope)) for scope in all_scopes())


def _scope_named(chunk_id: str) -> Scope | None:
    """The knowledge base a scoped chunk id names, if it is one (unknown protocol or profile: None)."""
    if not isinstance(chunk_id, str):  # `None in chunks` is False, as in a dict
        return None
    protocol, _, rest = chunk_id.partition("/")
    profile, _, local = rest.partition("/")
    if not local:
        return None
    try:
        spec = spec_of((protocol, profile))
    except KeyError:
        return None
    return (protocol, profile) if profile in spec.profiles else None


@cache
def _scope_chunks(scope: Scope) -> dict[str, Chunk]:
    return {c.id: c for c in all_chunks(scope)}


_CHUNKS = ChunksById()


def chunks_in(scope: Scope) -> Mapping[str, Chunk]:
    """The chunks of one knowledge base, by scoped id, in `all_chunks` order (chunked on first use)."""
    return _scope_chunks(scope)


def chunk_by_id() -> ChunksById:
    """Every chunk of every knowledge base, by its scoped id; each knowledge base chunked on first use."""
    return _CHUNKS


def get_chunk(chunk_id: str) -> Chunk:
    try:
        return chunk_by_id()[chunk_id]
    except KeyError:
        raise KeyError(f"no chunk {chunk_id!r}") from None


@cache
def evidence_texts(scope: Scope) -> tuple[str, ...]:
    """Every text a search of the evidence plan embeds in one knowledge base
    (`ProtocolSpec.possible_searches`: one-rule parts, never a join of several)."""
    from clinreason.knowledge.query import dense_text

    spec = spec_of(scope)
    queries = (q for profile, search in spec.possible_searches() if profile == scope[1] for q in search.parts or (search.query,))
    return tuple(dict.fromkeys(dense_text(q, scope) for q in queries))


def missing_evidence_texts(settings: Settings, scope: Scope) -> list[str]:
    """The evidence plan's texts not in the query-embedding cache: a search for one would load the model."""
    with _lock:
        cache_ = _embedder(settings).cache
    return [t for t in evidence_texts(scope) if not cache_.has(t)]


def prepare_evidence(settings: Settings, scope: Scope) -> int:
    """Embed every text the evidence plan can search for in this knowledge base (`kb build`, server
    warm-up), so no assessment loads the model. Returns how many were embedded now (0: all cached)."""
    todo = missing_evidence_texts(settings, scope)
    with _lock:
        embedder = _embedder(settings)
    for text in todo:  # one at a time, as a search embeds: the same vector, bit for bit
        embedder.embed_query(text)
    return len(todo)


def warm_search(settings: Settings, scope: Scope) -> int:
    """Open one knowledge base's index, load what a search reads, and embed the evidence plan's texts:
    after this a search in it that misses the result cache loads no model and builds nothing.
    Returns how many texts were embedded now."""
    get_index(settings, scope=scope).warm()
    return prepare_evidence(settings, scope)
