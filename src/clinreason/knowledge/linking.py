"""Link a free-text question to the protocol rules it is about.

A pharmacist asks "Aldactone and Septra?" or "she threw up twice"; the
passages that answer it are the ones that state or apply a protocol rule
(an interaction exclusion, a red flag). Links come from three places:

- drugs and classes the formulary finds in the question, through the
  interaction rules that they trigger (the same data the protocol node uses);
- numbers the protocol reads (ages, lab values against the profile's own
  thresholds: `RetrievalHooks`);
- cue words per rule in the protocol's cues.toml, matched on stemmed whole
  words and skipped when negated just before ("not pregnant", "no fever").

Questions about one facet of a drug ("side effects", "safest while
breastfeeding") also link that monograph section (the protocol's facets.toml),
and a question that names a guideline links that document.

Everything is per knowledge base (protocol, profile).

The index ranks the passages tagged with a linked rule, and the linked
monograph sections, as a third list beside BM25 and dense search
(knowledge/index.py).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from functools import cache, lru_cache

from clinreason.formulary import tokens
from clinreason.knowledge.corpus import Scope, default_scope, spec_of
from clinreason.protocols.registry import DEFAULT_PROTOCOL, get_spec

@cache
def stemmer():  # type: ignore[no-untyped-def]
    import Stemmer  # PyStemmer, already used by the BM25 index

    return Stemmer.Stemmer("english")


def _stems(text: str) -> tuple[str, ...]:
    return tuple(stemmer().stemWords(list(tokens(text))))


Cues = tuple[tuple[tuple[tuple[str, ...], str], ...], dict[str, tuple[str, ...]]]


def parse_cues(text: str, protocol: str = DEFAULT_PROTOCOL) -> Cues:
    """(stemmed phrase, rule id) pairs and class -> rule ids; unknown rules or classes are errors."""
    raw = tomllib.loads(text)
    spec = get_spec(protocol)
    known = spec.rules
    raw.setdefault("classes", {})
    cues = [([r.strip() for r in key.split(",")], ps) for key, ps in raw["cues"].items()]  # "RULE-A, RULE-B" = [...]
    unknown = {r for rules, _ in cues for r in rules if r not in known}
    unknown |= {r for rs in raw["classes"].values() for r in rs if r not in known}
    if unknown:
        raise ValueError(f"rule cues name unknown rules {sorted(unknown)}")
    bad_classes = set(raw["classes"]) - set(spec.formulary.classes)
    if bad_classes:
        raise ValueError(f"rule cues name unknown drug classes {sorted(bad_classes)}")
    phrases = tuple((_stems(p), rule) for rules, ps in cues for p in ps for rule in rules)
    return phrases, {c: tuple(rs) for c, rs in raw["classes"].items()}


@cache
def _cues(protocol: str) -> Cues:
    spec = get_spec(protocol)
    return parse_cues(spec.read_text("cues.toml"), protocol) if spec.has_file("cues.toml") else ((), {})


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
def linked_rules(query: str, scope: Scope | None = None) -> tuple[str, ...]:
    """Rule ids the question is about, in protocol order."""
    scope = scope or default_scope()
    spec = spec_of(scope)
    formulary, profile, hooks = spec.formulary, spec.profile(scope[1]), spec.retrieval
    phrases, class_rules = _cues(spec.id)
    found: set[str] = set()

    match = formulary.match(query)  # its classes and ingredients already cover every matched drug
    classes = set(match.classes)
    substances = set(match.drugs) | set(match.ingredients)
    for rule in [*formulary.interactions, *formulary.cautions]:  # a caution's drugs link its rule too
        if substances & set(rule.drugs) or classes & set(rule.classes):
            found.add(rule.rule_id)
    for c in classes:
        found.update(class_rules.get(c, ()))
    if hooks.link_numbers:
        hooks.link_numbers(query, profile, formulary, found)
    words = _stems(query)
    found.update(rule for phrase, rule in phrases if affirms_phrase(words, phrase))
    if hooks.link_after_cues:
        hooks.link_after_cues(query, profile, found)
    order = _protocol_order(spec.id)
    return tuple(sorted((r for r in found if r in order), key=order.__getitem__))


@cache
def _facet_cues(protocol: str) -> tuple[tuple[tuple[str, ...], str, bool], ...]:
    """(stemmed phrase, monograph section slug, links every option when none is named)."""
    spec = get_spec(protocol)
    if not spec.has_file("facets.toml"):
        return ()
    raw = tomllib.loads(spec.read_text("facets.toml"))
    return tuple(
        (_stems(p), facet, table == "across_agents")
        for table in ("across_agents", "per_agent")
        for facet, ps in raw.get(table, {}).items()
        for p in ps
    )


@lru_cache(maxsize=4096)
def linked_facets(query: str, scope: Scope | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(monograph section slugs, the options whose sections to link) for a question.

    A facet links the sections of the options the question names; an
    across-options facet with no option named links every option's section.
    """
    spec = spec_of(scope or default_scope())
    words = _stems(query)
    hits = [(facet, across) for phrase, facet, across in _facet_cues(spec.id) if affirms_phrase(words, phrase)]
    if not hits:
        return (), ()
    formulary = spec.formulary
    agents = formulary.options_named(query)
    facets = tuple(dict.fromkeys(f for f, across in hits if agents or across))
    return (facets, agents or tuple(formulary.options)) if facets else ((), ())


def named_sources(query: str, scope: Scope | None = None) -> tuple[str, ...]:
    """Guideline document ids a question names ("what does <guideline> say")."""
    spec = spec_of(scope or default_scope())
    return tuple(doc for doc, pattern in spec.retrieval.named_sources.items() if pattern.search(query))


@cache
def _protocol_order(protocol: str) -> dict[str, tuple[int, int]]:
    """Rule id -> (evaluation step, catalogue position)."""
    return {rid: (r.step, i) for i, (rid, r) in enumerate(get_spec(protocol).rules.items())}
