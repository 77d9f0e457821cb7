"""Retrieval evaluation on labelled pharmacist questions (eval_queries.json).

recall@k is the fraction of a question's relevant chunks found in the top k,
averaged over questions; capped recall@k divides by min(k, relevant) instead,
so a question with more relevant chunks than k can still score 1; MRR is the
mean reciprocal rank of the first relevant chunk; hit@k is the share of
questions with any relevant chunk in the top k.

Two labelled sets: `eval_queries.json` (the development set, used while tuning
retrieval; labels completed by pooled judging) and `eval_queries_holdout.json`
(written afterwards and never tuned on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from clinreason.knowledge.index import KnowledgeIndex

METHODS = ("bm25", "dense", "hybrid")


@dataclass(frozen=True)
class EvalQuery:
    id: str
    query: str
    relevant: tuple[str, ...]
    topic: str


@dataclass(frozen=True)
class Metrics:
    method: str
    k: int
    recall: float
    capped_recall: float
    mrr: float
    hit_rate: float
    n: int
    misses: tuple[str, ...]  # query ids with no relevant chunk in the top k


SETS = {"dev": "eval_queries.json", "holdout": "eval_queries_holdout.json"}


def load_eval_queries(which: str = "dev") -> list[EvalQuery]:
    raw = json.loads(resources.files("clinreason.knowledge").joinpath(SETS[which]).read_text("utf-8"))
    return [EvalQuery(q["id"], q["query"], tuple(q["relevant"]), q["topic"]) for q in raw]


def evaluate(index: KnowledgeIndex, queries: list[EvalQuery], method: str, k: int = 5) -> Metrics:
    recall = capped = mrr = hits = 0.0
    misses = []
    for q in queries:
        ranked = [cid for cid, _ in index.search(q.query, k, method=method)]
        found = [cid for cid in ranked if cid in q.relevant]
        recall += len(found) / len(q.relevant)
        capped += len(found) / min(k, len(q.relevant))
        first = next((i for i, cid in enumerate(ranked, 1) if cid in q.relevant), None)
        mrr += 1.0 / first if first else 0.0
        hits += 1.0 if first else 0.0
        if not first:
            misses.append(q.id)
    n = len(queries)
    return Metrics(method, k, recall / n, capped / n, mrr / n, hits / n, n, tuple(misses))


def evaluate_all(index: KnowledgeIndex, k: int = 5, which: str = "dev") -> list[Metrics]:
    queries = load_eval_queries(which)
    return [evaluate(index, queries, m, k) for m in METHODS]
