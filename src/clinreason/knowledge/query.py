"""Query expansion through the formulary.

Pharmacists type brand names ("Septra", "Entresto") and lay words ("burning");
the passages use generic and clinical terms. Each drug the formulary finds in
the query adds its generic ingredient names and class names; each lay phrase
in data/lay_terms.toml adds its clinical term. The original words are kept,
so expansion can only add evidence.
"""

from __future__ import annotations

import tomllib
from functools import cache, lru_cache

from clinreason.formulary import tokens
from clinreason.knowledge.corpus import Scope, default_scope, spec_of
from clinreason.knowledge.linking import contains_phrase
from clinreason.knowledge.spelling import correct_spelling
from clinreason.protocols.registry import get_spec


@cache
def lay_terms(protocol: str) -> list[tuple[tuple[str, ...], str]]:
    spec = get_spec(protocol)
    if not spec.has_file("lay_terms.toml"):
        return []
    raw = tomllib.loads(spec.read_text("lay_terms.toml"))
    return [(tokens(phrase), clinical) for clinical, phrases in raw["terms"].items() for phrase in phrases]


@lru_cache(maxsize=4096)
def expand_query(query: str, scope: Scope | None = None) -> str:
    scope = scope or default_scope()
    spec = spec_of(scope)
    formulary = spec.formulary
    words = tokens(query)
    extra: list[str] = []
    match = formulary.match(query)  # a typed question: spelling tolerance, as for patient entries
    for drug in match.drugs:
        # sorted: a frozenset's order changes with the hash seed, and the expanded
        # text keys the query-embedding cache
        extra += [i.replace("_", " ") for i in sorted(formulary.ingredients_of(drug))]
        if drug in formulary.options:
            extra.append(formulary.options[drug].name)
    extra += [formulary.class_name(c) for c in match.classes]
    extra += [clinical for phrase, clinical in lay_terms(spec.id) if contains_phrase(words, phrase)]
    if spec.retrieval.expansion_terms:
        extra += spec.retrieval.expansion_terms(query, spec.profile(scope[1]))
    new = [e for e in dict.fromkeys(extra) if not set(tokens(e)) <= set(words)]
    return f"{query} ({'; '.join(new)})" if new else query


def dense_text(query: str, scope: Scope) -> str:
    """The text a search embeds for `query`: spelling repaired, then expanded (as `KnowledgeIndex.search` does)."""
    return expand_query(correct_spelling(query, scope), scope)
