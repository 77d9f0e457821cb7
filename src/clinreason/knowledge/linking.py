"""Link a free-text question to the protocol rules it is about.

A pharmacist asks "Aldactone and Septra?" or "she threw up twice"; the
passages that answer it are the ones that state or apply a protocol rule
(EX-HYPERKALEMIA, RF-NAUSEA-VOMITING). Links come from three places:

- drugs and classes the formulary finds in the question, through the
  interaction rules that they trigger (the same data the protocol node uses);
- ages and eGFR/CrCl values, compared with the profile's own thresholds;
- cue words per rule in data/rule_cues.toml, matched on stemmed whole words.

The index ranks the passages tagged with a linked rule as a third list beside
BM25 and dense search (knowledge/index.py).
"""

from __future__ import annotations

import re
import tomllib
from functools import cache, lru_cache
from importlib import resources

from clinreason.knowledge.formulary import load_formulary, tokens
from clinreason.protocols.profile import load_profile, rule_catalog

AGE = re.compile(r"\b(\d{1,3})[- ]?(?:years?[- ]old|year|yrs?|yo|y/o)\b", re.IGNORECASE)
ADULT_AGE = 18
RENAL = re.compile(r"\b(?:egfr|crcl|gfr|creatinine clearance)\D{0,12}(\d{1,3})", re.IGNORECASE)
# "2 bladder infections since January", "three UTIs this year": a count of
# episodes is what the recurrence rules (2 in 6 months, 3 in 12) turn on.
EPISODES = re.compile(
    r"\b(\d{1,2}|two|three|four|five|six|several|multiple)\s+(?:\w+\s+)?(?:utis?|uti's|infections|episodes)\b", re.IGNORECASE
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


def contains_phrase(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """Whole-word phrase containment on token tuples."""
    n = len(phrase)
    return n > 0 and any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


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
    found.update(rule for phrase, rule in phrases if contains_phrase(words, phrase))

    values = renal_values(query)
    if values:  # a stated eGFR/CrCl decides the renal complicating factor, not the word "eGFR"
        found.add("EX-RENAL")
        found.discard("CF-RENAL")
        if min(values) < profile.renal_complicating_below:
            found.add("CF-RENAL")
    return tuple(sorted(found, key=_protocol_order().__getitem__))


@cache
def _protocol_order() -> dict[str, tuple[int, int]]:
    """Rule id -> (evaluation step, catalogue position)."""
    return {rid: (r.step, i) for i, (rid, r) in enumerate(rule_catalog().items())}
