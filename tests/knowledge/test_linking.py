"""Question -> protocol rule links, the rule tags on passages, and what linking does to ranking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from patients import uti_spec

from clinreason.knowledge.chunking import all_chunks
from clinreason.knowledge.corpus import rule_chunk_id
from clinreason.knowledge.linking import linked_facets, linked_rules, named_sources, parse_cues

KB = "uti-cystitis/CA-ON/"  # chunk ids are scoped to their knowledge base (protocol, profile)


def rule_catalog():
    return uti_spec().rules


@pytest.mark.parametrize(
    ("question", "rule"),
    [
        ("Aldactone and Septra together?", "EX-HYPERKALEMIA"),  # brand -> potassium-sparing class
        ("she takes Entresto", "EX-HYPERKALEMIA"),  # ARNI
        ("on Coumadin for AF", "EX-WARFARIN"),
        ("weekly MTX 15 mg", "EX-METHOTREXATE"),
        ("Tikosyn patient with cystitis", "EX-DOFETILIDE"),
        ("68 year old on hydrochlorothiazide", "EX-THIAZIDE-65"),
        ("kidney transplant on tacrolimus", "CF-IMMUNOCOMPROMISED"),
        ("she threw up twice this morning", "RF-NAUSEA-VOMITING"),
        ("shaking chills since last night", "RF-RIGORS"),
        ("pain in her side and a temp of 38.5", "RF-FLANK-PAIN"),
        ("pain in her side and a temp of 38.5", "RF-FEVER"),
        ("24 weeks pregnant with burning", "CF-PREGNANT"),
        ("has an indwelling foley", "CF-CATHETER"),
        ("allergic to sulfa", "EX-ALLERGY"),
        ("had Macrobid 3 weeks ago", "EX-RECENT-USE"),
        ("G6PD deficient woman", "EX-G6PD"),
        ("new confusion in an older man", "CF-CONFUSION"),
        ("on prednisone 30 mg for her lupus", "CF-IMMUNOCOMPROMISED"),  # steroid class
        ("sx back a week after she finished her course", "RC-RELAPSE-4W"),
        ("third time this year", "RC-RECURRENT-12M"),
        ("2 bladder infections since March", "RC-RECURRENT-6M"),  # a count of episodes
        ("her 3rd bladder infection this year", "RC-RECURRENT-12M"),  # an ordinal count
        ("does she meet criteria with urgency alone?", "SX-CRITERIA-NOT-MET"),
        ("wants trimethoprim to take after intercourse", "RC-RECURRENT-6M"),  # prophylaxis is a recurrence plan
        ("prolapse, doesn't empty her bladder fully", "CF-NEUROGENIC-BLADDER"),
    ],
)
def test_questions_link_to_the_rule_that_decides_them(question, rule):
    assert rule in linked_rules(question)


def test_numbers_are_compared_with_the_profile_thresholds():
    assert {"EX-RENAL", "CF-RENAL"} <= set(linked_rules("Macrobid with an eGFR of 25"))
    # 45 is above the CA-ON 30 mL/min cut-off: still a renal-threshold question, not a complicating factor.
    at_45 = linked_rules("Macrobid with an eGFR of 45")
    assert "EX-RENAL" in at_45 and "CF-RENAL" not in at_45
    assert "CF-AGE-BELOW-MIN" in linked_rules("15 year old with burning")
    assert "EX-AGE" in linked_rules("17 yo asking for Monurol")  # fosfomycin: not under 18
    assert not {"CF-AGE-BELOW-MIN", "EX-AGE"} & set(linked_rules("40 year old with burning"))


def test_beers_criteria_is_not_a_question_about_symptom_criteria():
    assert not any(r.startswith("SX-") for r in linked_rules("Beers criteria nitrofurantoin older adults"))


def test_one_episode_or_other_counts_link_no_recurrence_rule():
    assert not {"RC-RECURRENT-6M", "RC-RECURRENT-12M"} & set(linked_rules("1 infection last year"))
    assert not {"RC-RECURRENT-6M", "RC-RECURRENT-12M"} & set(linked_rules("she has 2 kids and burning"))
    assert not {"RC-RECURRENT-6M", "RC-RECURRENT-12M"} & set(linked_rules("on the 2nd day of her first UTI"))


def test_naming_a_protocol_agent_alone_links_no_exclusion():
    assert linked_rules("nitrofurantoin dose for cystitis") == ()
    assert not any(r.startswith("EX-") for r in linked_rules("Septra DS how long"))


def test_unknown_rules_or_classes_in_cue_data_are_errors():
    with pytest.raises(ValueError, match="unknown rules"):
        parse_cues('[cues]\n"EX-NOT-A-RULE" = ["x"]\n[classes]\n')
    with pytest.raises(ValueError, match="unknown drug classes"):
        parse_cues('[cues]\n[classes]\n"not_a_class" = ["EX-RENAL"]\n')


def test_a_cue_key_may_name_several_rules():
    phrases, _ = parse_cues('[cues]\n"CF-RENAL, EX-RENAL" = ["dialysis"]\n"EX-RENAL" = ["egfr"]\n[classes]\n')
    assert sorted(rule for _, rule in phrases) == ["CF-RENAL", "EX-RENAL", "EX-RENAL"]
    with pytest.raises(ValueError, match=r"unknown rules \['EX-NOPE'\]"):
        parse_cues('[cues]\n"CF-RENAL, EX-NOPE" = ["x"]\n[classes]\n')


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_links_are_known_rules_in_protocol_order(text):
    catalog = rule_catalog()
    rules = linked_rules(text)
    assert set(rules) <= set(catalog) and len(set(rules)) == len(rules)
    steps = [catalog[r].step for r in rules]
    assert steps == sorted(steps)


def test_every_rule_has_its_statement_tagged_and_tags_are_known():
    chunks = {c.id: c for c in all_chunks()}
    for rule_id in rule_catalog():
        assert chunks[rule_chunk_id(rule_id)].rules == (rule_id,)
    for c in chunks.values():
        assert set(c.rules) <= set(rule_catalog()), c.id
        assert "<!--" not in c.text, c.id  # the tag comment is metadata, not passage text
    beers_warfarin = chunks[KB + "guideline-beers#tmp-smx-with-warfarin-bleeding-risk"]
    assert beers_warfarin.rules == ("EX-WARFARIN",)
    assert chunks[KB + "monograph-nitrofurantoin#renal-function"].rules == ("EX-RENAL",)


def test_linking_brings_the_protocol_rule_into_the_top_five(kb_index):
    q = "Aldactone and Septra together?"
    hybrid = [c for c, _ in kb_index.search(q, 5, method="hybrid")]
    assert KB + "rules-ca-on#ex-hyperkalemia" in hybrid
    vomiting = [c for c, _ in kb_index.search("she threw up twice and has burning", 3)]
    assert KB + "rules-ca-on#rf-nausea-vomiting" in vomiting


def test_linked_passages_respect_filters(kb_index):
    hits = kb_index.search("Aldactone and Septra together?", 8, {"kind": "guideline"})
    assert hits and all(kb_index.by_id[c].kind == "guideline" for c, _ in hits)
    assert KB + "guideline-beers#tmp-smx-with-spironolactone-or-other-potassium-sparing-diuretics" in [c for c, _ in hits]


@pytest.mark.parametrize(
    ("question", "facets", "agents"),
    [
        ("Septra side effects to warn her about", {"adverse-effects", "counselling"}, ("tmp_smx",)),
        ("Macrobid dose for cystitis", {"dose-and-regimen"}, ("nitrofurantoin",)),
        # lactation is not pregnancy: no rule covers it, so the facet compares all four agents
        ("breastfeeding mom with a UTI, which antibiotic is safest for the baby", {"pregnancy-and-lactation"},
         ("nitrofurantoin", "tmp_smx", "trimethoprim", "fosfomycin")),
    ],
)
def test_facet_words_link_the_monograph_sections_of_the_named_agents(question, facets, agents):
    linked, linked_agents = linked_facets(question)
    assert set(linked) == facets and linked_agents == agents


def test_a_per_agent_facet_without_an_agent_links_nothing():
    # A general counselling question belongs to the counselling policy, not to four monographs.
    assert linked_facets("what do I tell her about follow-up after starting antibiotics") == ((), ())


def test_a_facet_link_brings_up_the_section_that_answers(kb_index):
    question = "breastfeeding a 3 week old, mom has a UTI - which antibiotic is safest for the baby?"
    top = [c for c, _ in kb_index.search(question, 5)]
    assert sum(c.endswith("#pregnancy-and-lactation") for c in top) >= 3, top
    top = [c for c, _ in kb_index.search("Septra side effects to warn pt about", 5)]
    assert {KB + "monograph-tmp-smx#adverse-effects", KB + "monograph-tmp-smx#counselling"} <= set(top), top


@pytest.mark.parametrize(
    ("question", "docs"),
    [
        ("what does IDSA say is first line", ("guideline-idsa-2011",)),
        ("Beers criteria nitrofurantoin older adults", ("guideline-beers",)),
        ("NICE uses eGFR 45, why do we use 30", ("guideline-nice-ng109",)),
        ("is the protocol based on NICE or IDSA?", ("guideline-idsa-2011", "guideline-nice-ng109")),
        ("a nice older lady with burning", ()),  # "NICE" counts in capitals only
    ],
)
def test_questions_that_name_a_guideline(question, docs):
    assert named_sources(question) == docs


def test_a_named_guideline_answers_from_its_own_sections(kb_index):
    # The per-document cap would otherwise keep Beers to three TMP-SMX sections and drop its nitrofurantoin one.
    top = [c for c, _ in kb_index.search("Beers criteria nitrofurantoin older adults", 5)]
    assert KB + "guideline-beers#nitrofurantoin-in-older-adults-crcl-below-30-and-long-term-use" in top[:2], top
    assert sum(c.startswith(KB + "guideline-beers#") for c in top) >= 4, top


def test_a_negated_finding_links_neither_its_rule_nor_its_facet():
    question = "positive urine culture from routine labs, zero urinary symptoms, not pregnant - treat?"
    assert "CF-PREGNANT" not in linked_rules(question)
    assert linked_facets(question) == ((), ())
    assert "RF-FEVER" not in linked_rules("84 yo with new confusion, no fever")
    # Affirmed elsewhere in the question, the finding still links.
    assert "RF-FEVER" in linked_rules("no chills but a fever of 38.4")
    assert "CF-PREGNANT" in linked_rules("not diabetic, 12 weeks pregnant")
