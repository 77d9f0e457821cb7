"""Recognition of real product strings, text hygiene, and the properties that guard the next gap.

`product_strings.toml` was written from product sources (Health Canada DPD,
DailyMed, BNF) by someone who did not read the formulary data, so it tests
the formulary rather than restating it.
"""

from __future__ import annotations

import tomllib
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from patients import uti_formulary

from clinreason.formulary.recognition import match_words, max_edits
from clinreason.hygiene import clean_text, mixed_script_words
from clinreason.knowledge.spelling import class_words, corrections

F = uti_formulary()
CASES = tomllib.loads((Path(__file__).parent / "product_strings.toml").read_text("utf-8"))["case"]
KINDS = ("brand", "generic_maker", "combination", "misspelt", "glued", "unicode", "annotation")


def test_the_table_is_large_and_covers_every_kind():
    assert len(CASES) >= 150
    for kind in KINDS:
        assert sum(c["kind"] == kind for c in CASES) >= 15, kind


@pytest.mark.parametrize("case", CASES, ids=[c["text"] for c in CASES])
def test_real_product_string_maps_to_its_ingredients(case):
    m = F.match(case["text"])
    assert sorted(m.ingredients) == sorted(case["ingredients"]), (m.drugs, m.unknown_words)
    assert m.recognized, m.unknown_words


# --- interacting names: exhaustive single edits ------------------------------------------------
INTERACTING_CLASSES = {c for rule in F.interactions for c in rule.classes}
INTERACTING_DRUGS = {d for rule in F.interactions for d in rule.drugs}


def _interacting(drug_id: str) -> frozenset[str]:
    """The interaction rules a drug entry triggers (by class or by ingredient)."""
    return frozenset(r.rule_id for r in F.interactions if r.triggered_by(F.ingredients_of(drug_id), F.classes_of(drug_id)))


INTERACTING_NAMES = sorted({
    (w, d.id) for d in F.drugs.values() if _interacting(d.id)
    for t in d.terms for w in [match_words(t)] if len(w) == 1 and w[0].isalpha() and len(w[0]) >= 5
})


def _single_edits(word: str) -> set[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = {word[:i] + word[i + 1:] for i in range(len(word))}
    out |= {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
    out |= {word[:i] + c + word[i + 1:] for i in range(len(word)) for c in letters}
    out |= {word[:i] + c + word[i:] for i in range(len(word) + 1) for c in letters}
    return out - {word}


def test_no_single_edit_of_an_interacting_name_reads_as_a_drug_without_that_interaction():
    """Every one-edit misspelling of an interacting drug's name is either read as a drug that keeps
    the same interaction rules, or not recognised (and then not trusted): never as a safer drug."""
    wrong = []
    for (word,), drug_id in INTERACTING_NAMES:
        need = _interacting(drug_id)
        for typo in _single_edits(word):
            m = F.match(typo)
            if m.drugs and not m.unknown_words:
                got = frozenset().union(*(_interacting(d) for d in m.drugs))
                if not need <= got:
                    wrong.append((word, typo, m.drugs))
    assert not wrong, wrong[:20]


# --- properties -----------------------------------------------------------------------------
INVISIBLE = sorted(ch for ch in map(chr, range(0x10000)) if unicodedata.category(ch) == "Cf") + ["\u00a0", "\u202f", "\u2007"]
DRUG_WORDS = sorted({w for (w,), _ in INTERACTING_NAMES})


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(DRUG_WORDS), st.sampled_from(INVISIBLE), st.data())
def test_an_invisible_character_or_nbsp_inside_a_drug_name_changes_nothing(word, ch, data):
    at = data.draw(st.integers(0, len(word)))
    entry = f"{word.capitalize()} 10 mg daily"
    tricked = f"{word[:at].capitalize() if at else ''}{ch}{word[at:] if at else word.capitalize()} 10 mg daily"
    plain, m = F.match(entry), F.match(tricked)
    assert (m.ingredients, m.classes, m.recognized) == (plain.ingredients, plain.classes, plain.recognized), tricked


CLASS_WORDS = sorted(class_words())


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CLASS_WORDS), st.data())
def test_no_spelling_repair_ever_produces_a_class(word, data):
    # A near miss of a class word ("triazide" is one edit from "thiazide") must never be read as the class.
    typo = data.draw(st.sampled_from(sorted(_single_edits(word)) or [word]))
    m = F.match(typo)
    if typo not in {w for c in F.classes.values() for t in c.terms for w in [" ".join(match_words(t))]}:
        assert m.named_classes == [], (typo, m)
    assert all(fixed.split(" -> ")[1] not in CLASS_WORDS for fixed in m.spelling_corrections)
    assert all(fixed not in CLASS_WORDS for _, fixed in corrections(f"pt on {typo} daily"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=30))
def test_spelling_tolerance_is_length_aware_and_only_to_drug_terms(text):
    drug_terms = {w for d in F.drugs.values() for t in d.terms for w in match_words(t)}
    for fix in F.match(text).spelling_corrections:
        typed, fixed = fix.split(" -> ")
        assert fixed in drug_terms and 0 < max_edits(typed)


# --- text hygiene ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("lisino\u200bpril", "lisinopril"),  # zero-width space
        ("war\u00adfarin", "warfarin"),  # soft hyphen
        ("Coumadin\u00a05\u202fmg", "Coumadin 5 mg"),  # NBSP, narrow NBSP
        ("\ufeffwarfarin\u2060", "warfarin"),  # BOM, word joiner
        ("\u202eniraf\u202craw", "nirafraw"),  # bidi controls go; the letters stay as typed
        ("\uff37\uff41\uff52\uff46\uff41\uff52\uff49\uff4e", "Warfarin"),  # full-width
        ("Tikosyn 250 \u00b5g", "Tikosyn 250 mcg"),  # micro sign
        ("  Lasix\t40 mg \n", "Lasix 40 mg"),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean
    assert mixed_script_words(clean_text(raw)) == []


@pytest.mark.parametrize("word", ["lisin\u043epril", "\u0421oumadin", "Bactr\u0456m", "warfar\u03b9n"])
def test_mixed_script_words_are_found(word):
    assert mixed_script_words(f"{word} 10 mg") == [word]


@pytest.mark.parametrize("text", ["варфарин 5 мг", "Triméthoprime", "東京タワー", "naïve café"])
def test_single_script_words_are_not_mixed(text):
    assert mixed_script_words(text) == []


def test_french_spellings_match_without_accents():
    assert F.match("Triméthoprime 200 mg").ingredients == ["trimethoprim"]


# --- a second, independent name source as a coverage oracle -------------------------------------
def _excluded_agents(drug_ids) -> frozenset[str]:
    """The agents the interaction rules exclude for these drugs, plus the agents they are (allergy, recent use)."""
    rules = frozenset().union(*(_interacting(d) for d in drug_ids))
    agents = {a for r in F.interactions if r.rule_id in rules for a in r.excludes}
    agents |= {a for a, info in F.options.items() for d in drug_ids if F.ingredients_of(info.drug) & F.ingredients_of(d)}
    return frozenset(agents)


def _dner_names() -> list[tuple[str, str]]:
    """(name, ingredient) for every single-word name the drug-named-entity-recognition dictionary
    gives for an ingredient our interaction rules or agents act on."""
    from drug_named_entity_recognition import drugs_finder  # 2.3 s and 370 MB to load: tests only

    agent_ingredients = {i for a in F.options.values() for i in F.ingredients_of(a.drug)}
    watched = {d for d in F.drugs if not F.drugs[d].ingredients and (_interacting(d) or d in agent_ingredients)}
    out = []
    for name, canonicals in drugs_finder.d["drug_variant_to_canonical"].items():
        if name.isalpha() and name.isascii() and len(name) >= 5:
            out += [(name, c.lower()) for c in canonicals if c.lower() in watched]
    return sorted(set(out))


def test_no_name_the_second_source_knows_reads_as_a_safer_drug():
    """Every name the independent dictionary gives for an interacting drug or an agent is either
    recognised with that ingredient (or with interactions at least as wide) or not recognised, and
    so not trusted: never read as something that escapes the rule."""
    names = _dner_names()
    assert len(names) > 300
    wrong, known = [], 0
    for name, ingredient in names:
        m = F.match(name)
        if ingredient in m.ingredients:
            known += 1
        elif m.recognized and not _excluded_agents([ingredient]) <= _excluded_agents(m.drugs):
            wrong.append((name, ingredient, m.drugs))
    assert not wrong, wrong
    assert known / len(names) >= 0.75, f"{known}/{len(names)}"  # the rest are chemical names and rare foreign brands


def test_no_name_of_another_drug_is_verified_through_a_spelling_guess():
    """The reverse oracle: of the 25,000 single-word names in the independent dictionary, those our
    formulary reads through a spelling guess (about 400, many of them other drugs: Rapamycin read as
    Garamycin) never leave TMP-SMX or trimethoprim verified: the guess excludes, or the agent stays
    unverified."""
    from drug_named_entity_recognition import drugs_finder
    from patients import make_patient

    from clinreason import assess

    names = sorted({n for n in drugs_finder.d["drug_variant_to_canonical"] if n.isalpha() and n.isascii() and len(n) >= 5})
    guessed = [n for n in names if F.match(n).spelling_corrections]
    assert len(guessed) > 100
    verified = [(n, ev.option) for n in guessed
                for ev in assess(make_patient(history={"meds": [n]}), mode="deterministic").protocol.options
                if ev.option in ("tmp_smx", "trimethoprim") and ev.verified]
    assert not verified, verified[:10]
