"""`clinreason kb search | show | eval | misses | agreement` in process, against the session's index."""

from __future__ import annotations

import json

from cli_helpers import cli
from typer.testing import CliRunner

from clinreason.cli import app

runner = CliRunner()
KB = "uti-cystitis/CA-ON/"  # chunk ids are scoped to their knowledge base (protocol, profile)


def test_search_names_linked_rules_and_ranks_the_rule_statement(kb_index):
    r = runner.invoke(app, ["kb", "search", "Aldactone and Septra together?", "-k", "5"])
    assert r.exit_code == 0, r.output
    assert "linked rules: EX-HYPERKALEMIA" in r.output
    r = runner.invoke(app, ["kb", "search", "Aldactone and Septra together?", "-k", "5", "--json"])
    ids = [p["chunk_id"] for p in json.loads(r.output)]
    assert KB + "rules-ca-on#ex-hyperkalemia" in ids


def test_search_rejects_unknown_method_and_filters_with_exit_2(kb_index):
    r = runner.invoke(app, ["kb", "search", "warfarin", "--method", "magic"])
    assert r.exit_code == 2 and "method must be" in r.output
    r = runner.invoke(app, ["kb", "search", "warfarin", "--kind", "leaflet"])
    assert r.exit_code == 2 and "unknown kind" in r.output


def test_show_prints_source_and_protocol_rules(kb_index):
    r = runner.invoke(app, ["kb", "show", KB + "guideline-beers#tmp-smx-with-warfarin-bleeding-risk"])
    assert r.exit_code == 0, r.output
    assert "protocol rules: EX-WARFARIN" in r.output and "Beers" in r.output
    r = runner.invoke(app, ["kb", "show", "no-such#chunk"])
    assert r.exit_code == 2


def test_eval_rejects_unknown_set(kb_index):
    r = runner.invoke(app, ["kb", "eval", "--set", "tuning"])
    assert r.exit_code == 2 and "dev, holdout, blind" in r.output


def test_misses_lists_each_missing_passage_and_whether_its_fact_is_there(kb_index):
    from clinreason.knowledge.evaluation import load_eval_queries, miss_breakdown

    b = miss_breakdown(kb_index, load_eval_queries("blind5"), 5)
    r = runner.invoke(app, ["kb", "misses", "--set", "blind5"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert f"161 essential passages: {b.found} in the top 5; {b.restated} missing restate a fact in the top 5; " \
           f"{b.lost} missing state a fact the top 5 lacks" in r.output
    assert r.output.count("(restatement)") == b.restated and r.output.count("(fact lost)") == b.lost
    r = runner.invoke(app, ["kb", "misses", "--set", "blind5", "--lost-only"], env={"COLUMNS": "250"})
    assert r.output.count("(restatement)") == 0 and r.output.count("(fact lost)") == b.lost
    r = runner.invoke(app, ["kb", "misses", "--method", "magic"])
    assert r.exit_code == 2 and "bm25, dense, rrf, hybrid" in r.output


def test_agreement_prints_assessor_agreement_beside_retrieval(kb_index):
    r = runner.invoke(app, ["kb", "agreement", "-k", "5"])
    assert r.exit_code == 0, r.output
    # rich wraps the text cells to the terminal width; the figures sit in cells of their own
    assert "0.942" in r.output and "0.977" in r.output  # blind5's two assessors
    assert "0.842" in r.output and "0.954" in r.output  # the twenty paired questions of earlier sets
    assert "68%" in r.output and "20%" in r.output  # pairs with identical essential labels


def test_build_on_a_current_index_embeds_nothing(kb_index):
    r = cli("kb", "build")  # a new process, as a user runs it: it reports its own build, here none
    assert r.returncode == 0, r.stderr
    assert f"uti-cystitis/CA-ON: index is current: {len(kb_index.chunks)} chunks, kb version {kb_index.version}" in r.stdout


def test_search_json_is_the_cached_retrieve_result(kb_index):
    from clinreason.knowledge.retrieval import retrieve

    query = "nitrofurantoin renal cut-off"
    r = runner.invoke(app, ["kb", "search", query, "-k", "4", "--json"])
    assert r.exit_code == 0, r.output
    # `kb search` goes through the result cache like the API does, so both see one ranking.
    assert json.loads(r.output) == [p.model_dump() for p in retrieve(query, k=4)]
    assert json.loads(r.output)[0]["chunk_id"] in {KB + "rules-ca-on#ex-renal", KB + "monograph-nitrofurantoin#renal-function"}
