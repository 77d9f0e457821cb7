"""Query expansion through the formulary.

Pharmacists type brand names ("Septra", "Entresto") and lay words ("burning");
the passages use generic and clinical terms. Each drug the formulary finds in
the query adds its generic ingredient names and class names; each lay phrase
in data/lay_terms.toml adds its clinical term. The original words are kept,
so expansion can only add evidence.
"""

from __future__ import annotations

from functools import cache, lru_cache

from clinreason.knowledge.formulary import load_formulary, read_data, tokens
from clinreason.knowledge.linking import ADULT_AGE, ages, contains_phrase, renal_values
from clinreason.protocols.profile import load_profile


@cache
def _lay_terms() -> list[tuple[tuple[str, ...], str]]:
    raw = read_data("lay_terms.toml")
    return [(tokens(phrase), clinical) for clinical, phrases in raw["terms"].items() for phrase in phrases]


def _numbers(query: str, profile_id: str = "CA-ON") -> list[str]:
    """Ages and kidney-function values compared with the profile's own thresholds."""
    profile = load_profile(profile_id)
    out = []
    for age in ages(query):
        if age < profile.min_age:
            out.append(f"age below {profile.min_age} complicating factor")
        if age < ADULT_AGE:
            out.append(f"under {ADULT_AGE} age limit")
        if age >= 65:
            out.append("older adults 65 and older")
    for value in renal_values(query):
        if value < profile.renal_complicating_below:
            out.append(f"renal dysfunction below {profile.renal_complicating_below:g} mL/min")
    return out


@lru_cache(maxsize=4096)
def expand_query(query: str) -> str:
    formulary = load_formulary()
    words = tokens(query)
    extra: list[str] = []
    match = formulary.match(query)  # a typed question: spelling tolerance, as for patient entries
    for drug in match.drugs:
        # sorted: a frozenset's order changes with the hash seed, and the expanded
        # text keys the query-embedding cache
        extra += [i.replace("_", " ") for i in sorted(formulary.ingredients_of(drug))]
        if drug in formulary.agents:
            extra.append(formulary.agents[drug].name)
    extra += [formulary.class_name(c) for c in match.classes]
    extra += [clinical for phrase, clinical in _lay_terms() if contains_phrase(words, phrase)]
    extra += _numbers(query)
    new = [e for e in dict.fromkeys(extra) if not set(tokens(e)) <= set(words)]
    return f"{query} ({'; '.join(new)})" if new else query
