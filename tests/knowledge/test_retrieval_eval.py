"""Retrieval quality on graded pharmacist questions: for UTI cystitis (CA-ON) dev, held-out and five
blind sets, one graded twice; for Lyme prophylaxis the corpus author's questions, one set per profile.

The labels live in eval/retrieval/ of the repository (one folder per knowledge
base), not in the package. The issue's bar is hybrid recall@5 >= 0.9 of the
essential passages; it is NOT met (README, "Retrieval quality"). Fact recall@5
(each deciding fact found through at least one passage that states it) is
reported beside it. The floors below sit just under the measured figures, so a
regression fails the suite; raise them as retrieval improves.
"""

from __future__ import annotations

import shutil
from importlib import resources

import pytest

from clinreason.knowledge.chunking import all_chunks
from clinreason.knowledge.evaluation import (
    ALL_SETS,
    CHECKOUT_EVAL_DIR,
    EVAL_DIR_ENV,
    OTHER_SETS,
    MISS_DEPTH,
    SETS,
    EvalDataNotFound,
    EvalQuery,
    assessor_agreement,
    double_graded_pairs,
    eval_dir,
    evaluate,
    evaluate_all,
    load_eval_queries,
    miss_breakdown,
    paraphrase_pairs,
)
from clinreason.knowledge.retrieval import get_index

FLOORS = {  # hybrid: recall@5 (essential passages), fact recall@5, MRR, hit@5, nDCG@5
    # The nine medication-review rule passages (2026-12, CA-*) moved dev MRR 0.895 -> 0.889 and nDCG
    # 0.795 -> 0.785, blind recall 0.826 -> 0.820 and nDCG 0.843 -> 0.840, blind5 nDCG 0.831 -> 0.828, blind5b nDCG
    # 0.832 -> 0.824; fact recall@5 did not drop on any set (blind4 rose 0.880 -> 0.892).
    # The twelve medication-review passages of issue 17 (2026-12: sulfonylureas, repaglinide, digoxin, phenytoin,
    # antacids, metoclopramide, probenecid, heparins, QT, NSAID with an antithrombotic) moved holdout MRR
    # 0.852 -> 0.839 and nDCG 0.717 -> 0.707 (h04, "Gaviscon with Macrobid": the new antacid passage, which states
    # the deciding fact but is not in the labels, now ranks first) and blind2 recall 0.741 -> 0.737; dev, blind,
    # blind4, blind5 and blind5b held or rose (blind5 MRR 0.925 -> 0.938), Lyme CA-ON recall rose 0.708 -> 0.744,
    # and fact recall@5 did not drop on any set. Labels were not edited.
    "dev": (0.86, 0.95, 0.88, 0.97, 0.78),
    "holdout": (0.72, 0.88, 0.83, 0.97, 0.70),
    "blind": (0.81, 0.95, 0.85, 0.97, 0.83),
    "blind2": (0.73, 0.93, 0.95, 0.97, 0.82),
    "blind3": (0.61, 0.82, 0.88, 0.97, 0.77),
    "blind4": (0.60, 0.87, 0.88, 0.97, 0.74),
    "blind5": (0.82, 0.96, 0.92, 0.97, 0.82),
    "blind5b": (0.80, 0.97, 0.92, 0.97, 0.82),
    # The Lyme author's questions, measured 0.637 / 0.714 / 0.482 / 0.786 / 0.495 (CA-ON) and
    # 0.763 / 0.795 / 0.500 / 0.846 / 0.570 (US-IDSA) when first run; retrieval was not tuned on them.
    "lyme-ca-on": (0.62, 0.70, 0.46, 0.77, 0.48),
    "lyme-us-idsa": (0.74, 0.78, 0.48, 0.83, 0.55),
}
LYME_QUESTIONS = {"lyme-ca-on": 14, "lyme-us-idsa": 13}  # of the author's 27


def test_the_labels_are_not_in_the_package_and_each_set_names_its_knowledge_base():
    assert not [f.name for f in resources.files("clinreason.knowledge").iterdir() if f.name.startswith("eval_")]
    assert eval_dir() == CHECKOUT_EVAL_DIR and CHECKOUT_EVAL_DIR.parts[-2:] == ("eval", "retrieval")
    assert set(ALL_SETS) == set(SETS) | set(OTHER_SETS) and not set(SETS) & set(OTHER_SETS)
    assert {s.scope for s in SETS.values()} == {("uti-cystitis", "CA-ON")}
    assert {s.scope for s in OTHER_SETS.values()} == {("lyme-pep", "CA-ON"), ("lyme-pep", "US-IDSA")}
    for which, s in ALL_SETS.items():
        assert s.path().is_file() and s.path().parent == CHECKOUT_EVAL_DIR.joinpath(*s.scope), which
        assert {q.scope for q in load_eval_queries(which)} == {s.scope}, which


def test_a_missing_label_directory_names_the_path_and_the_override(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv(EVAL_DIR_ENV, str(missing))
    with pytest.raises(EvalDataNotFound) as e:
        load_eval_queries("dev")
    assert str(missing) in str(e.value) and EVAL_DIR_ENV in str(e.value)
    with pytest.raises(EvalDataNotFound, match="root argument"):
        paraphrase_pairs(root=tmp_path / "also-nowhere")
    with pytest.raises(KeyError, match="lyme-ca-on"):
        load_eval_queries("tuning")


def test_the_override_points_at_another_copy_of_the_labels(tmp_path, monkeypatch):
    copy = tmp_path / "labels"
    shutil.copytree(CHECKOUT_EVAL_DIR, copy)
    monkeypatch.setenv(EVAL_DIR_ENV, str(copy))
    assert eval_dir() == copy and load_eval_queries("holdout") == load_eval_queries("holdout", root=CHECKOUT_EVAL_DIR)
    (copy / "uti-cystitis" / "CA-ON" / "holdout.json").write_text("[]", "utf-8")
    assert load_eval_queries("holdout") == [] and len(load_eval_queries("holdout", root=CHECKOUT_EVAL_DIR)) == 40


@pytest.mark.parametrize("which", list(ALL_SETS))
def test_labels_are_graded_and_resolve_to_real_chunks(which):
    scope = ALL_SETS[which].scope
    ids = {c.id for c in all_chunks(scope)}  # the set's own knowledge base: scoped ids
    queries = load_eval_queries(which)
    assert len(queries) == LYME_QUESTIONS.get(which, len(queries)) and (which in OTHER_SETS or len(queries) >= 40)
    assert len({q.id for q in queries}) == len(queries)
    for q in queries:
        assert q.essential, q.id
        assert all(cid.startswith("/".join(scope) + "/") for cid in (*q.essential, *q.supporting)), q.id
        assert set(q.essential) <= ids and set(q.supporting) <= ids, q.id
        assert not set(q.essential) & set(q.supporting), q.id
        # Facts group the essential passages: every one is in a fact, and a fact names only essential ones.
        assert q.facts and all(q.facts), q.id
        assert set().union(*map(set, q.facts)) == set(q.essential), q.id


def test_the_lyme_sets_have_every_passage_essential():
    # The author graded facts only: every passage of a fact is essential, none supporting.
    for which in OTHER_SETS:
        for q in load_eval_queries(which):
            assert not q.supporting and set().union(*map(set, q.facts)) == set(q.essential), q.id


@pytest.fixture(scope="module")
def metrics(kb_index):
    # kb_index is the UTI knowledge base; each Lyme set is ranked in its own profile's index.
    return {which: {m.method: m for m in evaluate_all(kb_index, 5, which)} for which in ALL_SETS}


def test_a_set_is_ranked_in_its_own_knowledge_base_whatever_index_is_given(kb_index, metrics):
    lyme = get_index(scope=("lyme-pep", "US-IDSA"))
    assert lyme.scope != kb_index.scope
    for index in (lyme, None):
        assert evaluate_all(index, 5, "lyme-us-idsa") == list(metrics["lyme-us-idsa"].values())
    queries = load_eval_queries("lyme-ca-on")[:3] + load_eval_queries("dev")[:3]  # two knowledge bases in one call
    mixed = evaluate(lyme, queries, "hybrid")
    assert mixed.n == 6 and mixed.hit_rate > 0


def test_report_figures(metrics, capsys):
    with capsys.disabled():
        for which, by_method in metrics.items():
            for m in by_method.values():
                print(
                    f"\n[{which}] {m.method:6s} recall@5 {m.recall:.3f} facts {m.fact_recall:.3f} capped {m.capped_recall:.3f} "
                    f"MRR {m.mrr:.3f} hit@5 {m.hit_rate:.3f} nDCG@5 {m.ndcg:.3f} (n={m.n})", end="",
                )
        print()


def test_rule_links_add_recall_over_text_fusion_on_every_uti_set(metrics):
    # Not on the Lyme sets, measured when they were added: on CA-ON hybrid recall@5 0.637 against rrf
    # 0.699, MRR 0.482 against dense 0.565. Ranking was not tuned on them.
    for which in SETS:
        m = metrics[which]
        assert m["hybrid"].recall >= m["rrf"].recall + 0.04, which
        assert m["hybrid"].mrr >= max(m["bm25"].mrr, m["dense"].mrr), which


@pytest.mark.parametrize("which", list(ALL_SETS))
def test_hybrid_floors(metrics, which):
    h = metrics[which]["hybrid"]
    recall, facts, mrr, hit, ndcg = FLOORS[which]
    assert h.recall >= recall and h.fact_recall >= facts, (which, h)
    assert h.mrr >= mrr and h.hit_rate >= hit and h.ndcg >= ndcg, (which, h)



class _FixedRanking:
    def __init__(self, ids: list[str]):
        self.ids = ids

    def search(self, query: str, k: int, method: str = "hybrid") -> list[tuple[str, float]]:
        return [(cid, 1.0) for cid in self.ids[:k]]


def test_fact_recall_counts_a_fact_once_whichever_passage_states_it():
    # The rule restated in three documents is one fact; the dose is another.
    q = EvalQuery("x", "Septra with spironolactone?", ("rule", "monograph", "beers", "dose"), ("mechanism",), "interaction",
                  (("rule", "monograph", "beers"), ("dose",)))
    m = evaluate(_FixedRanking(["beers", "mechanism", "other"]), [q], "hybrid", k=5)  # type: ignore[arg-type]
    assert m.recall == 0.25 and m.fact_recall == 0.5 and m.mrr == 1.0
    m = evaluate(_FixedRanking(["other", "dose", "rule"]), [q], "hybrid", k=5)  # type: ignore[arg-type]
    assert m.recall == 0.5 and m.fact_recall == 1.0 and m.mrr == 0.5


def test_a_missed_passage_is_a_restatement_only_when_its_fact_is_in_the_top_k():
    q = EvalQuery("x", "Septra with spironolactone?", ("rule", "monograph", "beers", "dose"), (), "interaction",
                  (("rule", "monograph", "beers"), ("dose",)))
    ranking = ["beers", "a", "b", "c", "d", "e", "rule"]  # dose never ranked, the rule at 7
    b = miss_breakdown(_FixedRanking(ranking), [q], k=5)  # type: ignore[arg-type]
    assert (b.essential, b.found, b.restated, b.lost) == (4, 1, 2, 1)
    by_id = {m.chunk_id: m for m in b.misses}
    assert by_id["rule"].rank == 7 and by_id["rule"].fact_found  # beers states the same rule in the top five
    assert by_id["monograph"].rank is None and by_id["monograph"].fact_found
    assert by_id["dose"].rank is None and not by_id["dose"].fact_found  # the dose is a fact the reader lacks
    assert miss_breakdown(_FixedRanking(ranking), [q], k=7).misses == tuple(  # type: ignore[arg-type]
        m for m in b.misses if m.chunk_id != "rule"
    )


@pytest.mark.parametrize("which", list(ALL_SETS))
def test_most_passages_hybrid_misses_restate_a_fact_already_in_the_top_five(kb_index, which):
    # README, "Retrieval quality": 70% of the essential passages missing from
    # the top five restate a fact one of the five already states (57% to 93% per UTI set).
    # Not on the Lyme sets (CA-ON 5 restated, 10 lost; US-IDSA 3 and 6): most of their misses are facts.
    queries = load_eval_queries(which)
    b = miss_breakdown(kb_index, queries, 5)  # each question in its own knowledge base
    if which in SETS:
        assert b.restated > b.lost, (which, b.restated, b.lost)
    # The misses are judged against the same top five `kb eval` scores.
    index = get_index(scope=ALL_SETS[which].scope)
    missing = {(m.query.id, m.chunk_id) for m in b.misses}
    for q in queries:
        top = {cid for cid, _ in index.search(q.query, 5)}
        assert {cid for cid in q.essential if (q.id, cid) in missing} == set(q.essential) - top, q.id


def test_miss_depth_reads_no_deeper_than_a_top_five_search():
    # KnowledgeIndex.search reads max(4k, FUSION_DEPTH) deep: past FUSION_DEPTH / 4
    # a deeper list would fuse more candidates and could reorder its first five.
    from clinreason.knowledge.index import FUSION_DEPTH

    assert 4 * MISS_DEPTH <= FUSION_DEPTH


def test_assessor_agreement_judges_each_assessor_by_the_other_both_ways():
    # A names the rule twice over; B names the rule once and the dose as a second fact.
    a = EvalQuery("a", "Septra with spironolactone?", ("rule", "monograph"), (), "interaction", (("rule", "monograph"),))
    b = EvalQuery("b", "septra + aldactone ok?", ("rule", "dose"), (), "interaction", (("rule",), ("dose",)))
    agreement = assessor_agreement([(a, b)])
    # passages: A's labels find 1 of B's 2, B's find 1 of A's 2; facts: A covers B's rule, not its dose (0.5), B covers A's one fact (1.0)
    assert agreement.passage_recall == 0.5 and agreement.fact_recall == 0.75 and agreement.identical == 0.0


def test_paraphrase_pairs_cross_sets_and_their_agreement_is_the_readme_figure():
    pairs = paraphrase_pairs()
    set_of = {q.id: which for which in SETS for q in load_eval_queries(which)}
    assert len(pairs) == 20 and len({(a.id, b.id) for a, b in pairs}) == 20
    assert all(set_of[a.id] != set_of[b.id] for a, b in pairs)  # two sets, so two assessors
    agreement = assessor_agreement(pairs)
    # README, "Retrieval quality": two assessors agree on 0.842 of passages but 0.954 of facts
    assert round(agreement.passage_recall, 3) == 0.842 and round(agreement.fact_recall, 3) == 0.954


def test_blind5_is_one_set_of_questions_graded_twice_and_its_assessors_mostly_agree():
    pairs = double_graded_pairs()
    assert len(pairs) == 40 and all(a.id == b.id and a.query == b.query for a, b in pairs)
    agreement = assessor_agreement(pairs)
    # README, "Retrieval quality": same guide, working alone: 0.942 of passages, 0.977 of facts, 68% identical
    assert round(agreement.passage_recall, 3) == 0.942 and round(agreement.fact_recall, 3) == 0.977
    assert agreement.identical == 27 / 40
