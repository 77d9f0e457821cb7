"""Retrieval evaluation on labelled pharmacist questions.

Labels are graded. Each question lists its *essential* passages (they state
the rule, threshold, dose or interaction that decides the answer; a
pharmacist answering would cite them) and its *supporting* passages (useful
background: mechanisms, general counselling, guideline comparisons). Grades
were assigned by assessors who read the passages and never saw a ranking.

Essential passages are also grouped into *facts* (nuggets): one fact is one
clinical proposition the answer needs, and passages that each state it fully
share a group. The groups were made by assessors reading the question, its
answer and the passages, never a ranking.

Metrics at k, averaged over questions:
- recall: share of the essential passages found in the top k (the issue's bar);
- fact recall: share of the facts with at least one of their passages in the
  top k (a fact restated in six documents counts once, as a reader needs it);
- capped recall: the same, divided by min(k, essential) so a question with
  more than k essential passages can still score 1;
- MRR: reciprocal rank of the first essential passage;
- hit: share of questions with an essential passage in the top k;
- nDCG: graded (essential 2, supporting 1);
- recall_all: share of essential + supporting passages found in the top k.

Eight sets (seven sets of questions):
- dev (`eval_queries.json`): used while tuning retrieval;
- holdout (`eval_queries_holdout.json`): written after the first tuning round,
  never tuned on;
- blind (`eval_queries_blind.json`): written from the protocol text alone and
  graded by separate assessors after rule linking was built; its misses were
  then studied, so it is no longer unseen;
- blind2 (`eval_queries_blind2.json`): written the same way after the
  vocabulary round that studied holdout and blind misses, graded by another
  assessor against the frozen corpus, and run once; its misses were then
  studied (spelling repair and facet links came from them);
- blind3 (`eval_queries_blind3.json`): written blind from the protocol text
  alone after that round, graded (passages and fact groups) by another
  assessor against a dump of the corpus, and run once; its misses were then
  studied (named-guideline links came from them);
- blind4 (`eval_queries_blind4.json`): written and graded the same way, by
  other assessors, and run once on the configuration of that round;
- blind5 and blind5b (`eval_queries_blind5.json`, `..._blind5b.json`): one
  set of questions written blind from the protocol, graded twice, by two
  assessors working alone from the same guide, and run once: the unseen
  estimate, against two assessors, and a direct measure of their agreement.

The fact groups of the first four sets were added later by assessors who
grouped the existing essential labels, unchanged, without seeing a ranking.

Labels name every passage that states a deciding fact, so a question whose
fact is restated in seven documents has seven essential passages and recall@5
cannot reach 1 on it; fact recall@5 can.

Misses (`miss_breakdown`): each essential passage missing from a top k is
either a restatement (another passage stating its fact is in the top k) or a
fact lost; passage recall counts both, fact recall only the second.

Assessor agreement: blind5 was graded twice, and twenty questions appear
twice, in other words, in two earlier sets (`eval_paraphrases.json`), so two
assessors labelled each; judging one assessor's essential passages by the
other's labels measures how far a recall bar can sensibly ask a ranking to
agree with one assessor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads SETS for its help text; the index and its imports load only to evaluate
    from clinreason.knowledge.index import KnowledgeIndex

# bm25 and dense alone; rrf fuses the two; hybrid adds the rule-linked list.
METHODS = ("bm25", "dense", "rrf", "hybrid")
SETS = {
    "dev": "eval_queries.json",
    "holdout": "eval_queries_holdout.json",
    "blind": "eval_queries_blind.json",
    "blind2": "eval_queries_blind2.json",
    "blind3": "eval_queries_blind3.json",
    "blind4": "eval_queries_blind4.json",
    "blind5": "eval_queries_blind5.json",
    "blind5b": "eval_queries_blind5b.json",
}
# Sets that grade the same questions twice, each by its own assessor working
# alone: the second repeats the first's ids and texts with its own labels.
DOUBLE_GRADED = (("blind5", "blind5b"),)


@dataclass(frozen=True)
class EvalQuery:
    id: str
    query: str
    essential: tuple[str, ...]
    supporting: tuple[str, ...]
    topic: str
    facts: tuple[tuple[str, ...], ...]  # essential passages grouped by the fact they state

    def grade(self, chunk_id: str) -> int:
        return 2 if chunk_id in self.essential else 1 if chunk_id in self.supporting else 0


@dataclass(frozen=True)
class Metrics:
    method: str
    k: int
    recall: float
    fact_recall: float
    capped_recall: float
    mrr: float
    hit_rate: float
    ndcg: float
    recall_all: float
    n: int
    misses: tuple[str, ...]  # query ids with no essential passage in the top k


def load_eval_queries(which: str = "dev") -> list[EvalQuery]:
    raw = json.loads(resources.files("clinreason.knowledge").joinpath(SETS[which]).read_text("utf-8"))
    return [
        EvalQuery(
            q["id"], q["query"], tuple(q["essential"]), tuple(q["supporting"]), q["topic"],
            tuple(tuple(f["passages"]) for f in q["facts"]),
        )
        for q in raw
    ]


def _ndcg(q: EvalQuery, ranked: list[str], k: int) -> float:
    dcg = sum(q.grade(cid) / math.log2(r + 1) for r, cid in enumerate(ranked[:k], 1))
    ideal = [2] * len(q.essential) + [1] * len(q.supporting)
    idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal[:k], 1))
    return dcg / idcg


def _label_recall(q: EvalQuery, found: set[str]) -> tuple[float, float]:
    """Share of q's essential passages in `found`, and share of q's facts with a passage in it."""
    return len(found & set(q.essential)) / len(q.essential), sum(1 for group in q.facts if found & set(group)) / len(q.facts)


def evaluate(index: KnowledgeIndex, queries: list[EvalQuery], method: str, k: int = 5) -> Metrics:
    recall = facts = capped = mrr = hits = ndcg = recall_all = 0.0
    misses = []
    for q in queries:
        ranked = [cid for cid, _ in index.search(q.query, k, method=method)]
        found = set(ranked) & set(q.essential)
        passages, stated = _label_recall(q, found)
        recall += passages
        facts += stated
        capped += len(found) / min(k, len(q.essential))
        recall_all += sum(1 for cid in ranked if q.grade(cid)) / (len(q.essential) + len(q.supporting))
        ndcg += _ndcg(q, ranked, k)
        first = next((i for i, cid in enumerate(ranked, 1) if cid in q.essential), None)
        mrr += 1.0 / first if first else 0.0
        hits += 1.0 if first else 0.0
        if not first:
            misses.append(q.id)
    n = len(queries)
    return Metrics(method, k, recall / n, facts / n, capped / n, mrr / n, hits / n, ndcg / n, recall_all / n, n, tuple(misses))


def evaluate_all(index: KnowledgeIndex, k: int = 5, which: str = "dev") -> list[Metrics]:
    queries = load_eval_queries(which)
    return [evaluate(index, queries, m, k) for m in METHODS]


# --- misses --------------------------------------------------------------------
# How far down the ranked list a missed passage is looked for. A search for up
# to FUSION_DEPTH / 4 passages reads BM25 and dense as deep as a top-5 search
# does, so its first k are exactly the top k (KnowledgeIndex.search); deeper
# searches read more and can reorder them. A test holds the two together.
MISS_DEPTH = 25


@dataclass(frozen=True)
class Miss:
    """An essential passage missing from a question's top k."""

    query: EvalQuery
    chunk_id: str
    rank: int | None  # its place in the ranked list (per-document cap applied); None below MISS_DEPTH
    fact_found: bool  # a passage stating the same fact is in the top k: a restatement missed, not a fact


@dataclass(frozen=True)
class MissBreakdown:
    """Where the essential passages of a set went: found, missed as restatements, or missed with their fact.

    Passage recall counts both kinds of miss; fact recall only the second. The
    split says how much of the gap between them a ranking could close only by
    filling the top k with passages that repeat a fact already there.
    """

    essential: int  # essential passages over all questions
    found: int
    misses: tuple[Miss, ...]

    @property
    def restated(self) -> int:
        return sum(m.fact_found for m in self.misses)

    @property
    def lost(self) -> int:
        return len(self.misses) - self.restated


def miss_breakdown(index: KnowledgeIndex, queries: list[EvalQuery], k: int = 5, method: str = "hybrid") -> MissBreakdown:
    # One ranking to MISS_DEPTH serves both: its first k are the top k (see MISS_DEPTH).
    essential = found = 0
    misses: list[Miss] = []
    for q in queries:
        ranked = [cid for cid, _ in index.search(q.query, max(k, MISS_DEPTH), method=method)]
        top = set(ranked[:k])
        essential += len(q.essential)
        for cid in q.essential:
            if cid in top:
                found += 1
                continue
            rank = ranked.index(cid) + 1 if cid in ranked else None
            fact_found = any(top & set(group) for group in q.facts if cid in group)
            misses.append(Miss(q, cid, rank, fact_found))
    return MissBreakdown(essential, found, tuple(misses))


# --- assessor agreement ------------------------------------------------------
@dataclass(frozen=True)
class Agreement:
    """How far two assessors' labels agree on the same question asked twice.

    Both figures average over the pairs in both directions (A's labels judged
    by B's, then B's by A's), with no cut-off at k: they are what a ranking that
    returned one assessor's essential passages, and nothing else, would score
    against the other's labels. A recall bar above them asks a ranking to agree
    with one assessor more than two assessors agree with each other.
    """

    pairs: int
    passage_recall: float  # share of one assessor's essential passages the other also labels essential
    fact_recall: float  # share of one assessor's facts with a passage among the other's essential ones
    identical: float  # share of pairs whose essential sets are the same


def paraphrase_pairs() -> list[tuple[EvalQuery, EvalQuery]]:
    """Cross-set question pairs that ask the same thing (`eval_paraphrases.json`)."""
    raw = json.loads(resources.files("clinreason.knowledge").joinpath("eval_paraphrases.json").read_text("utf-8"))
    by_key = {f"{which}/{q.id}": q for which in SETS for q in load_eval_queries(which)}
    return [(by_key[a], by_key[b]) for a, b in raw["pairs"]]


def double_graded_pairs() -> list[tuple[EvalQuery, EvalQuery]]:
    """Each question of a twice-graded set with its two assessors' labels."""
    pairs = []
    for first, second in DOUBLE_GRADED:
        other = {q.id: q for q in load_eval_queries(second)}
        pairs += [(q, other[q.id]) for q in load_eval_queries(first)]
    return pairs


def assessor_agreement(pairs: list[tuple[EvalQuery, EvalQuery]]) -> Agreement:
    passages = facts = 0.0
    for a, b in pairs:
        for labels, judge in ((a, b), (b, a)):
            p, f = _label_recall(judge, set(labels.essential))
            passages += p
            facts += f
    n = 2 * len(pairs)
    identical = sum(set(a.essential) == set(b.essential) for a, b in pairs) / len(pairs)
    return Agreement(len(pairs), passages / n, facts / n, identical)
