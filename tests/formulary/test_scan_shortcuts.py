"""The scan's shortcuts change no answer. `Recognizer.scan` passes over a plain number, unit or
annotation word at once, looks for a nil statement ("NKDA") only when the first word can begin one,
and lists the spelling candidates of a word by deleting letters. Each is checked here against the
longer way it stands for: the scan as it was written before the shortcuts (`reference_scan`, every
word through every step), and every subset of deleted positions."""

from __future__ import annotations

from functools import cache
from itertools import combinations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clinreason.formulary.recognition import _SHORT, Recognizer, Scan, _deletions, match_words
from clinreason.protocols.registry import DEFAULT_PROTOCOL, get_spec

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def recognizer() -> Recognizer:
    r = get_spec(DEFAULT_PROTOCOL).formulary.recognizer
    r.warm()
    return r


def reference_scan(r: Recognizer, text: str, tolerant: bool = True, allergy: bool = False) -> Scan:
    """Every word through every step, in order: the scan with no shortcut."""
    words = match_words(text)
    out = Scan()
    if tuple(w for w in words if not w.isdigit()) in r.nil:
        out.non_drug.append("none")
        return out
    found = {"drug": out.drugs, "class": out.classes, "non_drug": out.non_drug}
    i, after_prefix = 0, False
    while i < len(words):
        w = words[i]
        term, advance = r._split_word(words, i), 2
        if term is None:
            term = r._term_at(words, i, after_prefix)
            if term is not None and term.kind == "non_drug" and not allergy:
                term = None
            advance = len(term.words) if term else 1
        if term is None and w.isascii() and not w.isdigit() and w not in r.prefixes and w not in r.known and len(w) > _SHORT:
            term = r._glued(w)
            if term is None and tolerant and (fixed := r.fuzzy(w)) is not None and r._guess_ok(r._single_drug[fixed].target):
                term = r._single_drug[fixed]
                out.corrections.append(f"{w} -> {fixed}")
        if term is not None:
            found[term.kind].append(term.target)
            i += advance
            after_prefix = False
            continue
        after_prefix = w in r.prefixes
        ignorable = w.isdigit() or after_prefix or w in r.known or len(w) <= _SHORT
        if not w.isascii() or w in r.combination_words or not ignorable:
            out.unknown.append(w)
        i += 1
    return out


@cache
def vocabulary() -> list[str]:
    """Words of every kind the shortcuts sort: terms and pieces of terms, prefixes, annotation and nil
    words, numbers (ASCII and not), short words, words in other scripts, misspellings."""
    r = recognizer()
    terms = sorted({" ".join(t.words) for bucket in r.index.values() for t in bucket})
    singles = sorted(r._single_drug)
    pieces = [w[:k] for w in singles[::40] for k in (3, len(w) // 2)] + [w[k:] for w in singles[::40] for k in (3, len(w) // 2)]
    nil = sorted(" ".join(p) for p in r.nil)
    return (terms[::7] + singles[::25] + pieces + sorted(r.prefixes) + sorted(r.known)[::3] + nil + sorted(r.combination_words)
            + sorted(r.glued_forms) + ["5", "20", "0", "12.5", "\u0661\u0660", "\u0968", "mg", "q", "x", "\u00f1u", "\u0434\u0430",
                                       "\u043b\u0438\u0437\u0438\u043d\u043e\u043f\u0440\u0438\u043b", "lisinoprl", "metfromin", "zzyzx"])


# (deferred: the vocabulary is read from the formulary when the first example is drawn, not at import)
entries = st.lists(st.deferred(lambda: st.sampled_from(vocabulary())), min_size=0, max_size=6).map(" ".join)


@SETTINGS
@given(entries, st.booleans(), st.booleans())
@example("NKDA", True, True)
@example("no known drug allergies", True, True)
@example("0 no meds", True, False)
@example("lisinopril \u0661\u0660 mg", True, False)
@example("\u00f1u 5", True, True)
@example("apo hydro 25", True, False)
def test_scan_matches_the_scan_without_shortcuts(text: str, tolerant: bool, allergy: bool) -> None:
    r = recognizer()
    assert r.scan(text, tolerant=tolerant, allergy=allergy) == reference_scan(r, text, tolerant=tolerant, allergy=allergy)


def test_every_nil_statement_is_read_as_none() -> None:
    r = recognizer()
    for phrase in sorted(r.nil):
        for text in (" ".join(phrase), " ".join(phrase).upper(), "0 " + " ".join(phrase)):
            assert r.scan(text, allergy=True).non_drug == ["none"], text


def test_a_number_or_short_word_in_another_script_is_not_accounted_for() -> None:
    """"١٠" is a number and "да" a two-letter word, but not ones the formulary reads: the entry is not trusted.
    (An accent is folded first: "ñu" is read as "nu".)"""
    assert recognizer().scan("lisinopril \u0661\u0660 mg").unknown == ["\u0661\u0660"]
    assert recognizer().scan("\u0434\u0430 5").unknown == ["\u0434\u0430"]
    assert recognizer().scan("\u00f1u").unknown == []


def _every_deletion(word: str, depth: int) -> set[str]:
    return {"".join(c for k, c in enumerate(word) if k not in gone)
            for d in range(depth + 1) for gone in combinations(range(len(word)), d)}


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abcdeab", min_size=0, max_size=12), st.integers(0, 2))
def test_deletions_are_every_subset_of_deleted_letters(word: str, depth: int) -> None:
    assert _deletions(word, depth) == _every_deletion(word, depth)


def test_every_word_the_shortcut_could_skip_wrongly() -> None:
    """Exhaustive over the words that are short, numbers or annotation words *and* may begin something
    (a term, a name broken in two, a prefixed maker-only name: "nu hydro", "gd atenol"), each followed
    by what could complete it. The shortcut must leave every one of them to the full steps."""
    r = recognizer()
    # what may begin something, from the data itself (not from the scan's own table of it)
    begins = set(r.index) | {w[:k] for w in r._single_drug for k in range(1, len(w))} | r.prefixes | r.combination_words
    risky = sorted(w for w in begins if w.isascii() and (w in r.known or w.isdigit() or len(w) <= _SHORT))
    maker_only = sorted({" ".join(t.words) for bucket in r.index.values() for t in bucket if t.maker_only})
    assert {"nu", "gd"} <= set(risky) and "hydro" in maker_only  # what the cases below rely on
    for w in risky:
        rests = [s[len(w):] for s in r._single_drug if s.startswith(w) and len(s) > len(w)][:5]
        followers = ["", "5 mg", *maker_only[:8], *rests, *(" ".join(t.words[1:]) for t in r.index.get(w, ()) if len(t.words) > 1)]
        for follower in followers:
            text = f"{w} {follower}".strip()
            for allergy in (False, True):
                assert r.scan(text, allergy=allergy) == reference_scan(r, text, allergy=allergy), text


def test_a_short_combination_word_stays_unknown() -> None:
    """A combination word ("co" in "Co-Amilozide") is never accounted for outside a term, even when it is
    short enough to pass as a unit: a tiny recognizer where nothing else begins with it."""
    from clinreason.formulary.recognition import Term

    r = Recognizer([Term(("zestril",), "drug", "lisinopril")], prefixes=["apo"], known_words=["mg"], nil=["none"],
                   glued_forms=[], combination_words=["xq"], same_product=lambda a, b: a == b, guess_ok=lambda d: True)
    assert r.scan("zestril xq 10 mg").unknown == ["xq"]
    assert r.scan("zestril 10 mg").unknown == []


@SETTINGS
@given(entries)
@example("Tylenol sulfa")
@example("Zestoretic 20/12.5 and ASA")
@example("Lisinopril 10 mg")
@example("Advil 200 mg")
def test_an_entry_has_the_ingredients_and_classes_of_what_it_names(text: str) -> None:
    """The composition of a match (read from a table for one drug and no class) is the union over what it
    names: each drug's ingredients and classes, plus the classes named in the text."""
    formulary = get_spec(DEFAULT_PROTOCOL).formulary
    m = formulary.match(text)
    assert m.ingredients == sorted(set().union(*(formulary.ingredients_of(d) for d in m.drugs)))
    assert m.classes == sorted(set(m.named_classes).union(*(formulary.classes_of(d) for d in m.drugs)))
    assert m.antibacterial == any(formulary.classes[c].antibacterial for c in m.classes)
    # and the rules it triggers, read from the one-drug table where it names one drug
    assert formulary.rules_of(m) == (formulary.interactions_triggered(m.ingredients, m.classes),
                                     formulary.cautions_triggered(m.ingredients, m.classes))
