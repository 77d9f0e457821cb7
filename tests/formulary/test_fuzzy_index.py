"""The indexed spelling lookup (`Recognizer.fuzzy`, a deletion index) returns exactly what the plain
algorithm it stands for returns: a linear scan of every fuzzy target by OSA distance (a transposition
is one edit), with the same policy (edits allowed by length, nearest only, no guess nearer a class
word, no guess between two different products)."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clinreason.formulary.recognition import Recognizer, max_edits
from clinreason.protocols.registry import DEFAULT_PROTOCOL, get_spec

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def osa(a: str, b: str) -> int:
    """Optimal string alignment distance, by the textbook dynamic programme."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def near(word: str, candidates: list[str], limit: int) -> list[tuple[str, int]]:
    # |len(a) - len(b)| is a lower bound of the distance: skipping those pairs changes no answer
    return [(c, d) for c in candidates if abs(len(c) - len(word)) <= limit and (d := osa(word, c)) <= limit]


def linear_fuzzy(r: Recognizer, word: str) -> str | None:
    """The reference: every fuzzy target scanned, no index."""
    limit = max_edits(word)
    if limit == 0 or not word.isascii():
        return None
    hits = near(word, sorted(r._fuzzy_target), limit)
    if not hits:
        return None
    best_d = min(d for _, d in hits)
    best = [c for c, d in hits if d == best_d]
    if best_d > 1 and near(word, r._class_words, best_d - 1):
        return None
    first = r._fuzzy_target[best[0]]
    return best[0] if all(r._same_product(first, r._fuzzy_target[c]) for c in best[1:]) else None


@cache
def recognizer() -> Recognizer:
    return get_spec(DEFAULT_PROTOCOL).formulary.recognizer


@cache
def targets() -> list[str]:
    return sorted(recognizer()._fuzzy_target)


@st.composite
def edited_terms(draw) -> str:
    """A real drug term with one to three random edits (delete, insert, substitute, swap neighbours)."""
    word = draw(st.sampled_from(targets()))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, max(len(word) - 1, 0)))
        op = draw(st.sampled_from(["delete", "insert", "substitute", "swap"]))
        letter = draw(st.sampled_from(LETTERS + "é"))
        if op == "delete" and len(word) > 1:
            word = word[:i] + word[i + 1:]
        elif op == "insert":
            word = word[:i] + letter + word[i:]
        elif op == "substitute":
            word = word[:i] + letter + word[i + 1:]
        elif op == "swap" and i + 1 < len(word):
            word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word


words = st.text(alphabet=LETTERS, min_size=1, max_size=14)


@SETTINGS
@given(st.one_of(words, edited_terms()))
@example("spironolacton")  # one deletion: spironolactone
@example("wafarin")
@example("thiazides")  # nearer a class word than Triazide: no guess
@example("lisinoprli")  # a transposition is one edit
@example("zorbaxol")
def test_indexed_lookup_equals_the_linear_scan(word):
    assert recognizer().fuzzy(word) == linear_fuzzy(recognizer(), word)


def test_the_reference_finds_what_the_examples_say():
    """The reference is not vacuous: it repairs the misspellings the recognizer is known to repair."""
    r = recognizer()
    assert linear_fuzzy(r, "spironolacton") == "spironolactone"
    assert linear_fuzzy(r, "lisinoprli") == "lisinopril"
    assert linear_fuzzy(r, "thiazides") is None
    assert linear_fuzzy(r, "abc") is None  # too short for any edit


@SETTINGS
@given(st.sampled_from(targets()))
def test_every_target_is_found_as_itself_when_long_enough(term):
    assert recognizer().fuzzy(term) == (term if max_edits(term) and term.isascii() else None)


@st.composite
def two_edit_words(draw) -> str:
    """A word of 9 letters or more (two edits allowed) within two edits of a real term, or a random one."""
    word = draw(st.one_of(edited_terms(), st.text(alphabet=LETTERS, min_size=9, max_size=16)))
    return word if len(word) >= 9 else word + "x" * (9 - len(word))


@SETTINGS
@given(two_edit_words())
@example("spironolacton")
@example("lisinporilx")  # a transposition across the middle, and a letter added
@example("hydrochlorothiazdie")
def test_the_half_index_misses_no_term_within_two_edits(word):
    """The lookup of a word allowed two edits lists a superset of the terms within two edits of it:
    none is missed by filing terms under their halves instead of under every two-letter deletion."""
    r = recognizer()
    within = {c for c, _ in near(word, targets(), 2)}
    assert within <= r._candidates(word, 2)


def test_a_transposition_across_the_cut_is_found():
    """The case the argument for the half index has to handle: the two letters either side of the cut
    swapped, and a second edit on one side."""
    r = recognizer()
    for term in ("spironolactone", "hydrochlorothiazide", "methotrexate", "clarithromycin"):
        cut = len(term) // 2
        swapped = term[:cut - 1] + term[cut] + term[cut - 1] + term[cut + 1:]
        for word in (swapped, swapped[:2] + "q" + swapped[3:], swapped[:-2] + "q" + swapped[-1:]):
            assert osa(word, term) <= 2 and term in r._candidates(word, 2), word


def _one_edit(word: str, letters: str = "qe") -> set[str]:
    """Every word one edit from `word`: each deletion, insertion, substitution (of `letters`) and swap."""
    out = {word[:i] + word[i + 1:] for i in range(len(word))}
    out |= {word[:i] + c + word[i:] for i in range(len(word) + 1) for c in letters}
    out |= {word[:i] + c + word[i + 1:] for i in range(len(word)) for c in letters}
    out |= {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
    return out - {word}


def test_every_two_edits_of_a_term_still_find_it():
    """Exhaustive over every pair of edits of a few terms (both in one half, one in each, across the cut):
    each resulting word of 9 letters or more lists the term among its candidates."""
    from rapidfuzz.distance import OSA

    r = recognizer()
    terms = [t for t in ("atorvastatin", "methotrexate", "spironolactone", "hydrochlorothiazide", "warfarin", "ciprofloxacin")
             if t in r._fuzzy_target]
    assert len(terms) >= 5
    checked = 0
    for term in terms:
        for once in _one_edit(term):
            for word in _one_edit(once) | {once}:
                if len(word) >= 9 and OSA.distance(word, term) <= 2:
                    checked += 1
                    assert term in r._candidates(word, 2), (term, word)
    assert checked > 10_000
