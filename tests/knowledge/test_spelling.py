"""Spelling repair of questions: what it fixes, what it must never touch, and what it does to ranking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import OSA

from clinreason.knowledge.linking import linked_rules
from clinreason.knowledge.spelling import _english_words, correct_spelling, corrections, domain_vocabulary

KNOWN = sorted(domain_vocabulary())


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("pregnent", "pregnant"),
        ("dysuira", "dysuria"),
        ("cathater", "catheter"),
        ("immunocompromized", "immunocompromised"),
        ("brestfeeding", "breastfeeding"),
        ("pyelonefritis", "pyelonephritis"),
        ("perscribe", "prescribe"),
        ("trimethroprim", "trimethoprim"),  # a transposition is one edit
    ],
)
def test_common_misspellings_are_repaired(typed, meant):
    assert corrections(f"pt with {typed}") == ((typed, meant),)


@pytest.mark.parametrize(
    "word",
    [
        "afebrile",  # a negating prefix: repairing it to "febrile" would invert the question
        "nonpregnant",
        "approving",  # English, and an edit away from "improving"
        "reassess",  # an inflection of a corpus word
        "metformin",  # a drug outside the formulary: no corpus word is near it
        "sx",  # shorthand, too short to guess at
    ],
)
def test_words_that_must_not_be_changed(word):
    assert corrections(f"68F {word} with urgency") == ()


def test_a_typo_does_not_cost_the_deciding_passages(kb_index):
    """The misspelt question ranks exactly as the spelt one: pregnancy decides it (CF-PREGNANT)."""
    typed = [c for c, _ in kb_index.search("pregnent pt 20 wks with dysuria, can I prescribe nitrofurantoin", 5)]
    spelt = [c for c, _ in kb_index.search("pregnant pt 20 wks with dysuria, can I prescribe nitrofurantoin", 5)]
    assert typed == spelt
    assert "CF-PREGNANT" in linked_rules(correct_spelling("pregnent pt 20 wks"))
    assert "uti-cystitis/CA-ON/monograph-nitrofurantoin#pregnancy-and-lactation" in typed


def test_case_and_punctuation_around_a_repair_are_kept():
    assert correct_spelling("Pregnent? (20 wks)") == "pregnant? (20 wks)"
    assert correct_spelling("Aldactone and Septra, potassium?") == "Aldactone and Septra, potassium?"


_known_words = st.sampled_from(KNOWN + sorted(_english_words())[:2000])


@settings(max_examples=200, deadline=None)
@given(st.lists(_known_words, min_size=1, max_size=8))
def test_a_question_of_known_words_is_never_changed(words):
    question = " ".join(words)
    assert correct_spelling(question) == question


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=40))
def test_repairs_are_small_edits_to_a_knowledge_base_word_with_the_same_first_letter(text):
    for typed, fixed in corrections(text):
        assert fixed in domain_vocabulary()
        assert typed[0] == fixed[0]
        assert OSA.distance(typed, fixed) <= (2 if len(typed) >= 8 else 1)
    once = correct_spelling(text)
    assert correct_spelling(once) == once  # repairing twice changes nothing more
