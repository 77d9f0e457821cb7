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
