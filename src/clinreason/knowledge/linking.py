"""Link a free-text question to the protocol rules it is about.

A pharmacist asks "Aldactone and Septra?" or "she threw up twice"; the
passages that answer it are the ones that state or apply a protocol rule
(EX-HYPERKALEMIA, RF-NAUSEA-VOMITING). Links come from three places:

- drugs and classes the formulary finds in the question, through the
  interaction rules that they trigger (the same data the protocol node uses);
- ages and eGFR/CrCl values, compared with the profile's own thresholds;
- cue words per rule in data/rule_cues.toml, matched on stemmed whole words
  and skipped when negated just before ("not pregnant", "no fever").

Questions about one facet of a drug ("Septra side effects", "safest while
breastfeeding") also link that monograph section (data/facet_cues.toml), and
a question that names a guideline ("what does IDSA say") links that document.

The index ranks the passages tagged with a linked rule, and the linked
monograph sections, as a third list beside BM25 and dense search
(knowledge/index.py).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import resources

from clinreason.knowledge.formulary import load_formulary, read_data, tokens
from clinreason.protocols.profile import load_profile, rule_catalog

AGE = re.compile(r"\b(\d{1,3})[- ]?(?:years?[- ]old|year|yrs?|yo|y/o)\b", re.IGNORECASE)
ADULT_AGE = 18
RENAL = re.compile(r"\b(?:egfr|crcl|gfr|creatinine clearance)\D{0,12}(\d{1,3})", re.IGNORECASE)
# "2 bladder infections since January", "three UTIs this year", "her 3rd UTI":
# a count of episodes is what the recurrence rules (2 in 6 months, 3 in 12) turn on.
EPISODES = re.compile(
    r"\b(?:(?:\d{1,2}|two|three|four|five|six|several|multiple)\s+(?:\w+\s+)?(?:utis?|uti's|infections|episodes)"
    r"|(?:2nd|3rd|[4-9]th|second|third|fourth|fifth)\s+(?:\w+\s+)?(?:uti|infection|episode))\b",
    re.IGNORECASE,
)


def ages(text: str) -> list[int]:
    return [int(m.group(1)) for m in AGE.finditer(text)]


def renal_values(text: str) -> list[int]:
    return [int(m.group(1)) for m in RENAL.finditer(text)]


@cache
def stemmer():  # type: ignore[no-untyped-def]
    import Stemmer  # PyStemmer, already used by the BM25 index

    return Stemmer.Stemmer("english")


def _stems(text: str) -> tuple[str, ...]:
    return tuple(stemmer().stemWords(list(tokens(text))))


Cues = tuple[tuple[tuple[tuple[str, ...], str], ...], dict[str, tuple[str, ...]]]


def parse_cues(text: str) -> Cues:
    """(stemmed phrase, rule id) pairs and class -> rule ids; unknown rules or classes are errors."""
    raw = tomllib.loads(text)
    known = rule_catalog()
    cues = [([r.strip() for r in key.split(",")], ps) for key, ps in raw["cues"].items()]  # "CF-RENAL, EX-RENAL" = [...]
    unknown = {r for rules, _ in cues for r in rules if r not in known}
    unknown |= {r for rs in raw["classes"].values() for r in rs if r not in known}
    if unknown:
        raise ValueError(f"rule cues name unknown rules {sorted(unknown)}")
    bad_classes = set(raw["classes"]) - set(load_formulary().classes)
    if bad_classes:
        raise ValueError(f"rule cues name unknown drug classes {sorted(bad_classes)}")
    phrases = tuple((_stems(p), rule) for rules, ps in cues for p in ps for rule in rules)
    return phrases, {c: tuple(rs) for c, rs in raw["classes"].items()}


@cache
def _cues() -> Cues:
    return parse_cues(resources.files("clinreason.knowledge.data").joinpath("rule_cues.toml").read_text("utf-8"))


# "not pregnant", "no fever", "denies flank pain": a negated finding is not what the question is about.
_NEGATIONS = frozenset({"no", "not", "non", "denies", "deni", "without", "zero", "negative"})
_NEGATION_WINDOW = 3  # words before the cue


def _starts(words: tuple[str, ...], phrase: tuple[str, ...]) -> Iterator[int]:
    """Positions where the phrase occurs as whole words."""
    n = len(phrase)
    return (i for i in range(len(words) - n + 1) if n and words[i : i + n] == phrase)


def contains_phrase(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """Whole-word phrase containment on token tuples."""
    return next(_starts(words, phrase), None) is not None


def affirms_phrase(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """Whole-word containment with at least one occurrence not negated just before it."""
    return any(not _NEGATIONS & set(words[max(0, i - _NEGATION_WINDOW) : i]) for i in _starts(words, phrase))


@lru_cache(maxsize=4096)  # bounded: a long-running API server sees endless new questions
def linked_rules(query: str, profile_id: str = "CA-ON") -> tuple[str, ...]:
    """Rule ids the question is about, in protocol order."""
    formulary = load_formulary()
    profile = load_profile(profile_id)
    phrases, class_rules = _cues()
    found: set[str] = set()

    match = formulary.match(query)  # its classes and ingredients already cover every matched drug
    classes = set(match.classes)
    substances = set(match.drugs) | set(match.ingredients)
    for rule in formulary.interactions:
        if substances & set(rule.drugs) or classes & set(rule.classes):
            found.add(rule.rule_id)
    for c in classes:
        found.update(class_rules.get(c, ()))

    for age in ages(query):
        # Any minor links both age rules: questions at the boundary ("16 year
        # old") are about where the limits fall.
        if age < max(profile.min_age, ADULT_AGE):
            found.add("CF-AGE-BELOW-MIN")
        if age < ADULT_AGE or any(age < a.min_age for a in formulary.agents.values()):
            found.add("EX-AGE")
    if EPISODES.search(query):
        found.update(("RC-RECURRENT-6M", "RC-RECURRENT-12M"))
    words = _stems(query)
    found.update(rule for phrase, rule in phrases if affirms_phrase(words, phrase))

    values = renal_values(query)
    if values:  # a stated eGFR/CrCl decides the renal complicating factor, not the word "eGFR"
        found.add("EX-RENAL")
        found.discard("CF-RENAL")
        if min(values) < profile.renal_complicating_below:
            found.add("CF-RENAL")
    return tuple(sorted(found, key=_protocol_order().__getitem__))


@cache
def _facet_cues() -> tuple[tuple[tuple[str, ...], str, bool], ...]:
    """(stemmed phrase, monograph section slug, links every agent when none is named)."""
    raw = read_data("facet_cues.toml")
    return tuple(
        (_stems(p), facet, table == "across_agents")
        for table in ("across_agents", "per_agent")
        for facet, ps in raw[table].items()
        for p in ps
    )


@lru_cache(maxsize=4096)
def linked_facets(query: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(monograph section slugs, the agents whose sections to link) for a question.

    A facet links the sections of the agents the question names; an
    across-agents facet with no agent named links every agent's section.
    """
    words = _stems(query)
    hits = [(facet, across) for phrase, facet, across in _facet_cues() if affirms_phrase(words, phrase)]
    if not hits:
        return (), ()
    formulary = load_formulary()
    agents = formulary.agents_named(query)
    facets = tuple(dict.fromkeys(f for f, across in hits if agents or across))
    return (facets, agents or tuple(formulary.agents)) if facets else ((), ())


# Guideline documents a question can name. "NICE" is matched in capitals only,
# so "a nice patient" names nothing.
_NAMED_SOURCES = {
    "guideline-beers": re.compile(r"\bbeers\b", re.IGNORECASE),
    "guideline-idsa-2011": re.compile(r"\b(?:idsa|escmid)\b", re.IGNORECASE),
    "guideline-nice-ng109": re.compile(r"\bNICE\b|\b[Nn][Gg] ?109\b"),
}


def named_sources(query: str) -> tuple[str, ...]:
    """Guideline document ids a question names ("what does IDSA say", "Beers criteria")."""
    return tuple(doc for doc, pattern in _NAMED_SOURCES.items() if pattern.search(query))


@cache
def _protocol_order() -> dict[str, tuple[int, int]]:
    """Rule id -> (evaluation step, catalogue position)."""
    return {rid: (r.step, i) for i, (rid, r) in enumerate(rule_catalog().items())}
