"""Free-text matching through the formulary data."""

from __future__ import annotations

import pytest

from patients import uti_formulary


@pytest.fixture(scope="module")
def formulary():
    return uti_formulary()


@pytest.mark.parametrize(
    ("text", "ingredients", "classes"),
    [
        ("Lisinopril 10 mg daily", {"lisinopril"}, {"acei"}),
        ("Zestril 20mg", {"lisinopril"}, {"acei"}),
        ("Coumadin 2.5mg", {"warfarin"}, {"vitamin_k_antagonist"}),
        ("Entresto 49/51 mg BID", {"sacubitril", "valsartan"}, {"arni", "arb"}),
        ("Zestoretic 20/12.5", {"lisinopril", "hydrochlorothiazide"}, {"acei", "thiazide"}),
        ("Moduretic", {"amiloride", "hydrochlorothiazide"}, {"potassium_sparing_diuretic", "thiazide"}),
        ("Septra DS", {"trimethoprim", "sulfamethoxazole"}, {"sulfonamide_antibiotic", "dhfr_inhibitor"}),
        ("co-trimoxazole", {"trimethoprim", "sulfamethoxazole"}, {"sulfonamide_antibiotic", "dhfr_inhibitor"}),
    ],
)
def test_free_text_maps_to_ingredients_and_classes(formulary, text, ingredients, classes):
    m = formulary.match(text)
    assert set(m.ingredients) == ingredients
    assert classes <= set(m.classes)


def test_class_named_in_text(formulary):
    m = formulary.match("Sulfa drugs")
    assert m.named_classes == ["sulfonamide_antibiotic"] and m.drugs == []


def test_annotation_is_ignored(formulary):
    assert formulary.match("Macrobid (hives)").drugs == ["nitrofurantoin"]


def test_unknown_text_is_unrecognized(formulary):
    m = formulary.match("Zorbaxol 1000 IU")
    assert not m.recognized and m.unknown_words == ["zorbaxol"]
    # an entry of only dose and reaction words names nothing: not recognised either
    assert not formulary.match("1 tab twice daily (rash)").recognized
    assert formulary.match("vitamin D 1000 IU").recognized


def test_ambiguous_misspelling_is_not_guessed(formulary):
    # "losinopril" is one edit from lisinopril and from fosinopril: no guess, so not recognised (and not trusted)
    m = formulary.match("losinopril 10 mg")
    assert m.drugs == [] and m.unknown_words == ["losinopril"] and not m.recognized


def test_antibiotic_classes_are_marked_and_sulfa_is_an_allergy_class(formulary):
    assert formulary.match("Bactrim DS").antibacterial and formulary.match("doxycycline 100 mg").antibacterial
    assert not formulary.match("lisinopril").antibacterial
    assert formulary.classes["sulfonamide_antibiotic"].allergy_class


def test_every_agent_drug_and_rule_reference_resolves(formulary):
    for agent in formulary.options.values():
        assert agent.drug in formulary.drugs
    for rule in formulary.interactions:
        assert set(rule.excludes) <= set(formulary.options)
        assert rule.sources


def test_version_is_a_content_hash(formulary):
    assert len(formulary.version) == 12
    int(formulary.version, 16)
