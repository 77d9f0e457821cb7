"""Knowledge-base benchmark: build time, warm query latency, and scaling.

    python benchmarks/bench_retrieval.py [--set dev] [--scale 10000,100000] [--repeat 30]

--set picks the labelled questions (eval/retrieval/, from a checkout) and with
them the knowledge base: a set's scope (protocol, profile) is the corpus that
is built and searched (dev: uti-cystitis/CA-ON; lyme-ca-on, lyme-us-idsa: Lyme).

1. Build: cold (empty data dir: model load + embedding every chunk) and a
   no-op incremental rebuild.
2. Warm queries: the labelled questions with their embeddings cached, each
   repeated; p50/p95 per method (rrf = BM25 + dense only; hybrid adds the
   rule-linked list), and the cost of linking one new question to rules.
3. Scaling: synthetic corpora of N chunks made from the real ones (vectors
   perturbed with noise, texts re-shuffled), loaded into a fresh Chroma
   collection; hybrid query p50/p95 at each size.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from clinreason.config import Settings
from clinreason.knowledge.chunking import Chunk, all_chunks
from clinreason.knowledge.embeddings import Embedder
from clinreason.knowledge.evaluation import ALL_SETS, load_eval_queries
from clinreason.knowledge.index import KnowledgeIndex
from clinreason.knowledge.linking import linked_rules


def pct(values: list[float]) -> tuple[float, float]:
    s = sorted(values)
    return statistics.median(s), s[int(0.95 * (len(s) - 1))]


def time_queries(index: KnowledgeIndex, queries: list[str], method: str, repeat: int) -> tuple[float, float]:
    for q in queries:  # warm: embeddings cached, BM25 built
        index.search(q, 5, method=method)
    times = []
    for _ in range(repeat):
        for q in queries:
            t0 = time.perf_counter()
            index.search(q, 5, method=method)
            times.append((time.perf_counter() - t0) * 1000)
    return pct(times)


class PrecomputedEmbedder(Embedder):
    """Serves synthetic passage vectors from a table; queries use the real model/cache."""

    def __init__(self, base: Embedder, table: dict[str, np.ndarray]):
        self.cache, self._model, self._lock, self.model_loads = base.cache, base._model, base._lock, 0
        self._base, self._table = base, table

    def embed_passages(self, texts, progress=None, batch_size=32):  # type: ignore[override]
        return np.stack([self._table[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._base.embed_query(text)


def synthetic(chunks: list[Chunk], vectors: np.ndarray, n: int, rng: random.Random) -> tuple[list[Chunk], dict[str, np.ndarray]]:
    out, table = [], {}
    nprng = np.random.default_rng(0)
    for i in range(n):
        src = i % len(chunks)
        words = chunks[src].text.split()
        rng.shuffle(words)
        text = f"{' '.join(words)} [syn {i}]"
        scope = "/".join(chunks[src].scope)  # ids stay scoped to the knowledge base, as real ones are
        c = chunks[src].model_copy(update={"id": f"{scope}/syn-{i // 50}#s{i}", "doc_id": f"syn-{i // 50}", "text": text,
                                           "content_hash": f"{i:016x}"})
        v = vectors[src] + nprng.normal(0, 0.05, vectors.shape[1]).astype(np.float32)
        table[c.embed_text] = v / np.linalg.norm(v)
        out.append(c)
    return out, table


def main() -> None:
    ap = argparse.ArgumentParser(description="knowledge-base benchmark")
    ap.add_argument("--scale", default="10000,100000", help="comma-separated synthetic corpus sizes")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--set", dest="which", default="dev", choices=list(ALL_SETS),
                    help="labelled questions to time; their knowledge base is the corpus")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clinreason-bench-"))
    scope = ALL_SETS[args.which].scope
    chunks = list(all_chunks(scope))
    queries = [q.query for q in load_eval_queries(args.which)]

    settings = Settings(data_dir=tmp / "real")
    t0 = time.perf_counter()
    index = KnowledgeIndex(chunks, settings)
    report = index.build()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    noop = KnowledgeIndex(chunks, settings, embedder=index.embedder).build()
    print(f"knowledge base {'/'.join(scope)}, questions of the {args.which} set")
    print(f"build: {len(chunks)} chunks, cold {cold:.1f} s (embedded {report.embedded}); "
          f"incremental no-op {time.perf_counter() - t0:.2f} s (embedded {noop.embedded})")

    for method in ("bm25", "dense", "rrf", "hybrid"):
        p50, p95 = time_queries(index, queries, method, args.repeat)
        print(f"warm query ({len(queries)} questions x {args.repeat}), {method:6s}: p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")
    link_times = []
    for _ in range(args.repeat):
        for q in queries:
            t0 = time.perf_counter()
            linked_rules.__wrapped__(q, scope)  # uncached: what a question never seen before costs
            link_times.append((time.perf_counter() - t0) * 1000)
    p50, p95 = pct(link_times)
    print(f"rule linking of a new question (uncached): p50 {p50:6.3f} ms  p95 {p95:6.3f} ms")

    stored = index.collection.get(ids=[c.id for c in chunks], include=["embeddings"])  # built above: no re-embedding
    by_id = dict(zip(stored["ids"], stored["embeddings"], strict=True))
    vectors = np.array([by_id[c.id] for c in chunks], dtype=np.float32)
    rng = random.Random(0)
    for n in [int(x) for x in args.scale.split(",") if x]:
        syn, table = synthetic(chunks, vectors, n, rng)
        t0 = time.perf_counter()
        big = KnowledgeIndex(syn, Settings(data_dir=tmp / f"syn{n}"), embedder=PrecomputedEmbedder(index.embedder, table))
        big.build()
        big._bm25_index()
        load = time.perf_counter() - t0
        p50, p95 = time_queries(big, queries[:20], "hybrid", max(3, args.repeat // 5))
        print(f"scale {n:>7d} chunks: load+index {load:6.1f} s; hybrid query p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")


if __name__ == "__main__":
    main()
