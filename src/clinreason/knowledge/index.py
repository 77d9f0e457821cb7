"""Hybrid index over knowledge-base chunks: Chroma (dense) + BM25 (lexical), fused.

Chroma is the embedded persistent client under the data dir, or a Chroma
server when `CLINREASON_CHROMA_URL` is set. Collections never get an
embedding function (Chroma would download its default model): vectors come
from our own offline MiniLM embedder. Builds are incremental: a chunk whose
content hash is unchanged is not embedded again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from clinreason.config import Settings
from clinreason.knowledge.chunking import Chunk, kb_version
from clinreason.knowledge.corpus import Scope, default_scope, rule_chunk_id
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
    chroma_where,
    chunk_matches,
)
from clinreason.knowledge.linking import linked_facets, linked_rules, named_sources, stemmer
from clinreason.knowledge.query import dense_text, expand_query
from clinreason.knowledge.spelling import correct_spelling


@dataclass(frozen=True)
class BuildReport:
    kb_version: str
    total: int
    embedded: int
    removed: int
    unchanged: int
    seconds: float


def _metadata(c: Chunk, option_ids: Sequence[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "doc_id": c.doc_id, "kind": c.kind, "jurisdiction": c.jurisdiction,
        "content_hash": c.content_hash, "version": c.version,
    }
    meta.update({f"option_{a}": a in c.options for a in option_ids})
    return meta


def make_chroma_client(settings: Settings) -> Any:
    import chromadb  # ~1 s import: only when the index is opened

    chroma_settings = chromadb.Settings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "localhost", port=url.port or 8000, ssl=url.scheme == "https", settings=chroma_settings
        )
    path = settings.index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def collection_name(settings: Settings, scope: Scope) -> str:
    """One Chroma collection per knowledge base: `clinreason-kb-<protocol>-<profile>`."""
    return "-".join([settings.chroma_collection, *(part.lower() for part in scope)])


class KnowledgeIndex:
    """The index of one knowledge base (protocol, profile): its own BM25 statistics, collection and links."""

    def __init__(self, chunks: Sequence[Chunk], settings: Settings, embedder: Embedder | None = None, scope: Scope | None = None):
        self.chunks = list(chunks)
        self.scope: Scope = scope or (self.chunks[0].scope if self.chunks else default_scope())
        self.by_id = {c.id: c for c in self.chunks}
        self.settings = settings
        self.embedder = embedder or Embedder(settings.data_dir / "cache" / "query-embeddings.sqlite")
        self.option_ids = sorted({a for c in self.chunks for a in c.options})
        self.by_rule: dict[str, list[str]] = {}
        self.by_facet: dict[str, list[str]] = {}  # monograph section slug -> that section of each monograph
        self.by_doc: dict[str, list[str]] = {}
        for c in self.chunks:
            self.by_doc.setdefault(c.doc_id, []).append(c.id)
            for r in c.rules:
                self.by_rule.setdefault(r, []).append(c.id)
            if c.kind == "monograph":
                self.by_facet.setdefault(c.id.split("#", 1)[1], []).append(c.id)
        self.version = kb_version(self.chunks)
        self._client = make_chroma_client(settings)
        self.collection = self._client.get_or_create_collection(
            collection_name(settings, self.scope), embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        self._bm25: Any = None
        self._masks: dict[tuple[tuple[str, tuple[str, ...]], ...], np.ndarray] = {}  # BM25 filter masks
        self.last_build: BuildReport | None = None  # what this process's last build did, if it built

    # --- building -----------------------------------------------------------
    @property
    def is_current(self) -> bool:
        meta = self.collection.metadata or {}
        return meta.get("kb_version") == self.version and meta.get("model") == model_id()

    def build(self, progress: Progress | None = None, force: bool = False) -> BuildReport:
        """Bring the vector store in line with the chunks; embed only what changed."""
        t0 = time.perf_counter()
        existing = self.collection.get(include=["metadatas"])
        old = {i: (m or {}).get("content_hash") for i, m in zip(existing["ids"], existing["metadatas"] or [], strict=False)}
        same_model = (self.collection.metadata or {}).get("model") == model_id()
        todo = [c for c in self.chunks if force or not same_model or old.get(c.id) != c.content_hash]
        stale = [i for i in old if i not in self.by_id]
        if progress:
            progress("compare", len(self.chunks) - len(todo), len(self.chunks))
        if stale:
            self.collection.delete(ids=stale)
        if todo:
            vectors = self.embedder.embed_passages(
                [c.embed_text for c in todo], progress=(lambda done, total: progress("embed", done, total)) if progress else None
            )
            for start in range(0, len(todo), 1000):  # Chroma caps batch sizes
                part = todo[start : start + 1000]
                self.collection.upsert(
                    ids=[c.id for c in part],
                    embeddings=vectors[start : start + len(part)].tolist(),
                    documents=[c.text for c in part],
                    metadatas=[_metadata(c, self.option_ids) for c in part],
                )
        self.collection.modify(metadata={"kb_version": self.version, "model": model_id()})
        self.last_build = BuildReport(
            self.version, len(self.chunks), len(todo), len(stale), len(self.chunks) - len(todo), time.perf_counter() - t0
        )
        return self.last_build

    def ensure_built(self, progress: Progress | None = None) -> BuildReport | None:
        return None if self.is_current else self.build(progress)

    def warm(self) -> None:
        """Load what a first search would (the BM25 index, the spelling and rule-cue tables), so a
        server's first result-cache miss costs what every later one does."""
        self._bm25_index()
        self.linked(correct_spelling("warm up", self.scope), {})

    # --- lexical ------------------------------------------------------------
    def _bm25_index(self) -> Any:
        if self._bm25 is None:
            import bm25s

            tokens = bm25s.tokenize([c.embed_text for c in self.chunks], stopwords="en", stemmer=stemmer(), show_progress=False)
            self._bm25 = bm25s.BM25()
            self._bm25.index(tokens, show_progress=False)
        return self._bm25

    def _mask(self, filters: dict[str, list[str]]) -> np.ndarray:
        """1.0 for chunks the filters admit; built once per distinct filter (a pass over every chunk)."""
        key = tuple(sorted((k, tuple(v)) for k, v in filters.items()))
        if key not in self._masks:
            self._masks[key] = np.array([chunk_matches(c, filters) for c in self.chunks], dtype=np.float32)
        return self._masks[key]

    def bm25(self, query: str, n: int, filters: dict[str, list[str]] | None = None) -> list[tuple[str, float]]:
        import bm25s

        index = self._bm25_index()
        q = bm25s.tokenize([query], stopwords="en", stemmer=stemmer(), show_progress=False, return_ids=False)
        if not q or not q[0]:
            return []
        mask = self._mask(filters) if filters else None
        if mask is not None and not mask.any():
            return []
        n = min(n, len(self.chunks))
        docs, scores = index.retrieve([q[0]], k=n, show_progress=False, weight_mask=mask, n_threads=1)
        return [(self.chunks[int(d)].id, float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    # --- dense --------------------------------------------------------------
    def query_vector(self, expanded: str, parts: Sequence[str] = ()) -> np.ndarray:
        """The dense query: the expanded text's vector, or for a search over several fired rules the
        mean of one vector per rule's query (each embedded at `kb build`: finitely many texts)."""
        if len(parts) < 2:
            return self.embedder.embed_query(expanded)
        mean = np.mean([self.embedder.embed_query(dense_text(p, self.scope)) for p in parts], axis=0)
        return mean / np.linalg.norm(mean)

    def dense(self, query: str, n: int, filters: dict[str, list[str]] | None = None,
              parts: Sequence[str] = ()) -> list[tuple[str, float]]:
        vec = self.query_vector(query, parts)
        res = self.collection.query(
            query_embeddings=[vec.tolist()], n_results=min(n, len(self.chunks)), where=chroma_where(filters or {}),
            include=["distances"],
        )
        return [(i, 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]

    # --- rule links -----------------------------------------------------------
    def linked(self, query: str, text_scores: Mapping[str, float], filters: dict[str, list[str]] | None = None) -> list[str]:
        """Passages tagged with a rule the question links to, the monograph sections of its
        facets, and the best-matching sections of a guideline it names.

        The protocol's own statement of each linked rule comes first (it is what
        a plan cites), then the other tagged passages, best text match first.
        """
        rules = linked_rules(query, self.scope)
        statements = {rule_chunk_id(r, self.scope) for r in rules}

        def best_first(ids: Sequence[str]) -> list[str]:
            return sorted(ids, key=lambda cid: (cid not in statements, -text_scores.get(cid, 0.0), cid))

        def admitted(ids: Sequence[str]) -> list[str]:
            return [cid for cid in ids if not filters or chunk_matches(self.by_id[cid], filters)]

        out: set[str] = set()
        for rule in rules:
            out.update(best_first(admitted(self.by_rule.get(rule, ())))[:LINK_PER_RULE])
        for doc in named_sources(query, self.scope):  # "what does <guideline> say": that document's best sections
            out.update(best_first(admitted(self.by_doc.get(doc, ())))[:LINK_PER_RULE])
        facets, options = linked_facets(query, self.scope)
        for facet in facets:
            out.update(cid for cid in admitted(self.by_facet.get(facet, ())) if set(options) & set(self.by_id[cid].options))
        return best_first(list(out))

    # --- hybrid -------------------------------------------------------------
    def search(self, query: str, k: int = 5, filters: Filters | None = None, method: str = "hybrid",
               parts: Sequence[str] = ()) -> list[tuple[str, float]]:
        """Top-k (chunk id, score).

        method: hybrid (RRF of BM25, dense and the rule-linked list), rrf (BM25
        and dense only, for comparison), bm25 or dense. parts: the one-rule queries
        a query over several fired rules joins (`Search.over_rules`); its dense vector is their mean.
        """
        f = check_filters(filters, self.option_ids)
        query = correct_spelling(query, self.scope)  # before everything: BM25, dense and rule cues all miss a typo
        expanded = expand_query(query, self.scope)
        pool = max(4 * k, FUSION_DEPTH)
        if method == "bm25":
            return self.bm25(expanded, k, f)[:k]
        if method == "dense":
            return self.dense(expanded, k, f, parts)[:k]
        if method not in ("hybrid", "rrf"):
            raise ValueError(f"method must be hybrid, rrf, bm25 or dense, got {method!r}")
        fused: dict[str, float] = {}
        for ranking in (self.bm25(expanded, pool, f), self.dense(expanded, pool, f, parts)):
            for rank, (cid, _) in enumerate(ranking, start=1):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
        if method == "hybrid":
            for rank, cid in enumerate(self.linked(query, fused, f), start=1):
                fused[cid] = fused.get(cid, 0.0) + LINK_WEIGHT / (RRF_K + rank)
        out: list[tuple[str, float]] = []
        per_doc: dict[str, int] = {}
        uncapped = set(named_sources(query, self.scope))  # a guideline the question names is the answer
        for cid, score in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0])):
            doc = self.by_id[cid].doc_id
            if doc in uncapped or per_doc.get(doc, 0) < MAX_PER_DOC:
                per_doc[doc] = per_doc.get(doc, 0) + 1
                out.append((cid, score))
                if len(out) == k:
                    break
        return out
