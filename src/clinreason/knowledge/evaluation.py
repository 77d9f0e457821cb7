"""Retrieval evaluation on labelled pharmacist questions.

The labels live in the repository, not in the package: `eval/retrieval/` of a
checkout, one folder per knowledge base (`<protocol>/<profile>/`, the prefix of
the chunk ids they name), found from this file in an editable install or from
$CLINREASON_EVAL_DIR (or the `root` argument of the loaders). Each set knows its
knowledge base (`EvalSet.scope`, and `EvalQuery.scope` on each question), and
`evaluate`, `evaluate_all` and `miss_breakdown` rank each question in the index
of its own knowledge base.

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

The sets, each ranked in its own knowledge base, are listed in
`eval/retrieval/sets.toml` of the repository (not installed with the package);
its README says what each set is, how it was written and graded, and which
were studied after they were run. `SETS` are the primary sets (the ones the
retrieval work was done on), `OTHER_SETS` the rest, `ALL_SETS` both.

Labels name every passage that states a deciding fact, so a question whose
fact is restated in seven documents has seven essential passages and recall@5
cannot reach 1 on it; fact recall@5 can.

Misses (`miss_breakdown`): each essential passage missing from a top k is
either a restatement (another passage stating its fact is in the top k) or a
fact lost; passage recall counts both, fact recall only the second.

Assessor agreement: blind5 was graded twice, and twenty questions appear
twice, in other words, in two earlier sets (`paraphrase-pairs.json`), so two
assessors labelled each; judging one assessor's essential passages by the
other's labels measures how far a recall bar can sensibly ask a ranking to
agree with one assessor.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the CLI reads SETS for its help text; the index and its imports load only to evaluate
    from clinreason.knowledge.index import KnowledgeIndex

Scope = tuple[str, str]  # (protocol id, profile id): one knowledge base, the prefix of its chunk ids

# bm25 and dense alone; rrf fuses the two; hybrid adds the rule-linked list.
METHODS = ("bm25", "dense", "rrf", "hybrid")

EVAL_DIR_ENV = "CLINREASON_EVAL_DIR"
# src/clinreason/knowledge/evaluation.py -> the checkout's eval/retrieval (an editable install).
CHECKOUT_EVAL_DIR = Path(__file__).resolve().parents[3] / "eval" / "retrieval"

@dataclass(frozen=True)
class EvalSet:
    """One labelled set: its knowledge base and its file in that knowledge base's folder."""

    scope: Scope
    file: str

    @property
    def relpath(self) -> Path:
        return Path(*self.scope) / self.file

    def path(self, root: str | Path | None = None) -> Path:
        return eval_dir(root) / self.relpath

    @property
    def stem(self) -> str:  # how paraphrase-pairs.json names the set
        return self.file.removesuffix(".json")


class EvalDataNotFound(FileNotFoundError):
    """The label directory is missing: the labels are not installed with the package."""


def eval_dir(root: str | Path | None = None) -> Path:
    """The label directory: `root` if given, else $CLINREASON_EVAL_DIR, else the checkout's eval/retrieval."""
    if root is not None:
        path, how = Path(root), "the root argument"
    elif os.environ.get(EVAL_DIR_ENV):
        path, how = Path(os.environ[EVAL_DIR_ENV]), f"${EVAL_DIR_ENV}"
    else:
        path, how = CHECKOUT_EVAL_DIR, "the repository checkout"
    if not path.is_dir():
        raise EvalDataNotFound(
            f"retrieval evaluation labels not found at {path} (from {how}): they live in eval/retrieval/ of the "
            f"clinreason repository and are not installed with the package; run from a checkout (pip install -e .) "
            f"or set {EVAL_DIR_ENV} to that eval/retrieval directory"
        )
    return path


def _scope(text: str) -> Scope:
    protocol, profile = text.split("/")
    return protocol, profile


def _read_sets() -> tuple[dict[str, EvalSet], dict[str, EvalSet], tuple[tuple[str, str], ...], EvalSet | None]:
    """The set table (eval/retrieval/sets.toml); empty when the labels are not there (an installed
    package): the commands that need them then raise EvalDataNotFound."""
    try:
        raw = tomllib.loads((eval_dir() / "sets.toml").read_text("utf-8"))
    except (EvalDataNotFound, FileNotFoundError):
        return {}, {}, (), None
    primary, other = {}, {}
    for name, entry in raw["sets"].items():
        (primary if entry.get("primary") else other)[name] = EvalSet(_scope(entry["knowledge_base"]), entry["file"])
    para = raw.get("paraphrases")
    pairs = tuple((a, b) for a, b in raw.get("double_graded", []))
    return primary, other, pairs, EvalSet(_scope(para["knowledge_base"]), para["file"]) if para else None


SETS, OTHER_SETS, DOUBLE_GRADED, PARAPHRASES = _read_sets()
ALL_SETS: dict[str, EvalSet] = {**SETS, **OTHER_SETS}


@dataclass(frozen=True)
class EvalQuery:
    id: str
    query: str
    essential: tuple[str, ...]
    supporting: tuple[str, ...]
    topic: str
    facts: tuple[tuple[str, ...], ...]  # essential passages grouped by the fact they state
    scope: Scope | None = None  # its knowledge base; None: rank it in whatever index is given

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


def _eval_set(which: str) -> EvalSet:
    try:
        return ALL_SETS[which]
    except KeyError:
        raise KeyError(f"no evaluation set {which!r} (sets: {', '.join(ALL_SETS)})") from None


def load_eval_queries(which: str = "dev", *, root: str | Path | None = None) -> list[EvalQuery]:
    s = _eval_set(which)
    path = s.path(root)
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise EvalDataNotFound(f"evaluation set {which!r}: no file {path}") from None
    return [
        EvalQuery(
            q["id"], q["query"], tuple(q["essential"]), tuple(q["supporting"]), q["topic"],
            tuple(tuple(f["passages"]) for f in q["facts"]), s.scope,
        )
        for q in raw
    ]


# --- ranking each question in its own knowledge base ---------------------------
class _Ranker(Protocol):
    def search(self, query: str, k: int, method: str = "hybrid") -> list[tuple[str, float]]: ...


class _Indexes:
    """The index each question is ranked in: the one given when it has the question's scope (or the
    question has none), else that scope's process-wide index, under the given index's settings."""

    def __init__(self, given: KnowledgeIndex | _Ranker | None):
        self.given = given
        self._by_scope: dict[Scope, KnowledgeIndex | _Ranker] = {}

    def __call__(self, scope: Scope | None) -> KnowledgeIndex | _Ranker:
        given = self.given
        if given is not None and (scope is None or getattr(given, "scope", scope) == scope):
            return given  # a ranking without a scope (a test's fixed list) serves every question
        if scope is None:
            raise ValueError("a question without a scope needs an index to be ranked in")
        if scope not in self._by_scope:
            from clinreason.knowledge.retrieval import get_index

            self._by_scope[scope] = get_index(getattr(given, "settings", None), scope=scope)
        return self._by_scope[scope]


def _ndcg(q: EvalQuery, ranked: list[str], k: int) -> float:
    dcg = sum(q.grade(cid) / math.log2(r + 1) for r, cid in enumerate(ranked[:k], 1))
    ideal = [2] * len(q.essential) + [1] * len(q.supporting)
    idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal[:k], 1))
    return dcg / idcg


def _label_recall(q: EvalQuery, found: set[str]) -> tuple[float, float]:
    """Share of q's essential passages in `found`, and share of q's facts with a passage in it."""
    return len(found & set(q.essential)) / len(q.essential), sum(1 for group in q.facts if found & set(group)) / len(q.facts)


def evaluate(index: KnowledgeIndex | None, queries: list[EvalQuery], method: str = "hybrid", k: int = 5) -> Metrics:
    """Metrics at k of one method; each question is ranked in its own knowledge base (see _Indexes)."""
    index_for = _Indexes(index)
    recall = facts = capped = mrr = hits = ndcg = recall_all = 0.0
    misses = []
    for q in queries:
        ranked = [cid for cid, _ in index_for(q.scope).search(q.query, k, method=method)]
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


def evaluate_all(index: KnowledgeIndex | None = None, k: int = 5, which: str = "dev", *,
                 root: str | Path | None = None) -> list[Metrics]:
    """Every method on one set, in the set's knowledge base: `index` when it has the set's scope, else the
    process-wide index of that scope (under `index`'s settings, if one is given)."""
    queries = load_eval_queries(which, root=root)
    index_for = _Indexes(index)
    scoped = index_for(_eval_set(which).scope)
    return [evaluate(scoped, queries, m, k) for m in METHODS]  # type: ignore[arg-type]


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


def miss_breakdown(index: KnowledgeIndex | None, queries: list[EvalQuery], k: int = 5, method: str = "hybrid") -> MissBreakdown:
    # One ranking to MISS_DEPTH serves both: its first k are the top k (see MISS_DEPTH).
    # Each question is ranked in its own knowledge base, as in evaluate.
    index_for = _Indexes(index)
    essential = found = 0
    misses: list[Miss] = []
    for q in queries:
        ranked = [cid for cid, _ in index_for(q.scope).search(q.query, max(k, MISS_DEPTH), method=method)]
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


def paraphrase_pairs(*, root: str | Path | None = None) -> list[tuple[EvalQuery, EvalQuery]]:
    """Cross-set question pairs that ask the same thing (`paraphrase-pairs.json`; each side is
    `<set file without .json>/<question id>`, a set of the same knowledge base)."""
    if PARAPHRASES is None:
        eval_dir(root)  # raises EvalDataNotFound, naming where the labels were looked for
        raise EvalDataNotFound("eval/retrieval/sets.toml names no paraphrase pairs")
    path = PARAPHRASES.path(root)
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise EvalDataNotFound(f"paraphrase pairs: no file {path}") from None
    by_key = {f"{s.stem}/{q.id}": q for which, s in ALL_SETS.items() if s.scope == PARAPHRASES.scope
              for q in load_eval_queries(which, root=root)}
    return [(by_key[a], by_key[b]) for a, b in raw["pairs"]]


def double_graded_pairs(*, root: str | Path | None = None) -> list[tuple[EvalQuery, EvalQuery]]:
    """Each question of a twice-graded set with its two assessors' labels."""
    pairs = []
    for first, second in DOUBLE_GRADED:
        other = {q.id: q for q in load_eval_queries(second, root=root)}
        pairs += [(q, other[q.id]) for q in load_eval_queries(first, root=root)]
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
