"""Retrieval quality on labelled pharmacist questions (dev and held-out sets).

The issue's bar is hybrid recall@5 >= 0.9; it is NOT met yet (see README,
"Retrieval quality"). These floors sit just under the measured figures so a
regression fails the suite; raise them as retrieval improves.
"""

from __future__ import annotations

import pytest

from clinreason.knowledge.chunking import all_chunks
from clinreason.knowledge.evaluation import SETS, evaluate_all, load_eval_queries


@pytest.mark.parametrize("which", list(SETS))
def test_labels_resolve_to_real_chunks(which):
    ids = {c.id for c in all_chunks()}
    queries = load_eval_queries(which)
    assert len(queries) >= 40
    assert len({q.id for q in queries}) == len(queries)
    for q in queries:
        assert q.relevant and set(q.relevant) <= ids, q.id


@pytest.fixture(scope="module")
def metrics(kb_index):
    return {which: {m.method: m for m in evaluate_all(kb_index, 5, which)} for which in SETS}


def test_report_figures(metrics, capsys):
    with capsys.disabled():
        for which, by_method in metrics.items():
            for m in by_method.values():
                print(f"\n[{which}] {m.method:6s} recall@5 {m.recall:.3f} capped {m.capped_recall:.3f} MRR {m.mrr:.3f} hit@5 {m.hit_rate:.3f} (n={m.n})", end="")
        print()


def test_hybrid_beats_either_method_alone_on_mrr(metrics):
    for which, m in metrics.items():
        assert m["hybrid"].mrr >= max(m["bm25"].mrr, m["dense"].mrr), which


def test_dev_set_floors(metrics):
    h = metrics["dev"]["hybrid"]
    assert h.hit_rate >= 0.93 and h.recall >= 0.68 and h.mrr >= 0.81


def test_holdout_floors(metrics):
    h = metrics["holdout"]["hybrid"]
    assert h.hit_rate >= 0.86 and h.recall >= 0.49 and h.mrr >= 0.69
