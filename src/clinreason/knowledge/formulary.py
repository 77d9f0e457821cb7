"""Structured formulary: drugs, classes, protocol agents and interaction rules.

One source of truth. The protocol node matches free-text medications and
allergies through this data, and the knowledge base renders its monograph
passages from it, so a rule and the passage that cites it cannot drift apart.

Matching is on whole words (tokens), longest term first, so "Zestoretic 20/12.5"
finds lisinopril + hydrochlorothiazide and "Macrobid (hives)" finds
nitrofurantoin, while no drug is ever found inside an unrelated word. A single
long token one edit away from a known name (e.g. "spironolacton") also matches,
and the match is marked as a spelling correction for the prescriber.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from clinreason.protocols.result import DrugMatch

_DATA_PACKAGE = "clinreason.knowledge.data"
_DATA_FILES = ("drugs.toml", "classes.toml", "agents.toml", "interactions.toml")
_TOKEN = re.compile(r"[a-z0-9]+")
# Spelling tolerance only for long words: short ones collide too easily.
_FUZZY_MIN_LEN = 8


class DrugEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    terms: list[str]
    classes: list[str] = Field(default_factory=list)
    ingredients: list[str] = Field(default_factory=list)


class DrugClass(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name: str
    terms: list[str] = Field(default_factory=list)


class AgentInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name: str
    drug: str
    product: str
    recent_use_excluded_by: list[str]
    g6pd_excluded: bool
    min_age: int
    mechanism: str
    renal: str
    pregnancy: str
    lactation: str
    g6pd: str
    adverse_effects: list[str]
    counselling: list[str]
    sources: list[str]


class InteractionRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    rule_id: str
    title: str
    drugs: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    min_age: int | None = None
    excludes: list[str]
    mechanism: str
    advice: str
    sources: list[str]


def tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.lower()))


def _within_one_edit(a: str, b: str) -> bool:
    """True when a and b differ by at most one insertion, deletion or substitution."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = j = edits = 0
    while i < len(a) and j < len(b):
        if a[i] != b[j]:
            edits += 1
            if edits > 1:
                return False
            if len(a) == len(b):
                i += 1
            j += 1
        else:
            i += 1
            j += 1
    return edits + (len(b) - j) <= 1


@dataclass(frozen=True)
class _Term:
    words: tuple[str, ...]
    kind: str  # "drug" | "class"
    target: str


@dataclass
class Formulary:
    drugs: dict[str, DrugEntry]
    classes: dict[str, DrugClass]
    agents: dict[str, AgentInfo]
    interactions: list[InteractionRule]
    version: str
    _index: dict[str, list[_Term]] = field(default_factory=dict, repr=False)
    _single: dict[str, _Term] = field(default_factory=dict, repr=False)
    _ingredients: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _classes: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._check_references()
        # Closures over combination products, computed once: the hot path only looks up.
        for drug_id in self.drugs:
            self._ingredients[drug_id] = self._substances(drug_id)
            self._classes[drug_id] = self._all_classes(drug_id)
        terms = [_Term(tokens(t), "drug", d.id) for d in self.drugs.values() for t in [d.id.replace("_", " "), *d.terms]]
        terms += [_Term(tokens(t), "class", c.id) for c in self.classes.values() for t in c.terms]
        seen: dict[tuple[str, ...], _Term] = {}
        for term in terms:
            prior = seen.get(term.words)
            if prior and prior != term:
                raise ValueError(f"formulary term {' '.join(term.words)!r} is ambiguous: {prior.target} / {term.target}")
            seen[term.words] = term
        for term in seen.values():
            self._index.setdefault(term.words[0], []).append(term)
            if len(term.words) == 1:
                self._single[term.words[0]] = term
        for bucket in self._index.values():
            bucket.sort(key=lambda t: -len(t.words))

    def _check_references(self) -> None:
        for d in self.drugs.values():
            for c in d.classes:
                if c not in self.classes:
                    raise ValueError(f"drug {d.id}: unknown class {c}")
            for i in d.ingredients:
                if i not in self.drugs:
                    raise ValueError(f"drug {d.id}: unknown ingredient {i}")
        for rule in self.interactions:
            for c in rule.classes:
                if c not in self.classes:
                    raise ValueError(f"interaction {rule.id}: unknown class {c}")
            for d in rule.drugs:
                if d not in self.drugs:
                    raise ValueError(f"interaction {rule.id}: unknown drug {d}")
        for a in self.agents.values():
            if a.drug not in self.drugs:
                raise ValueError(f"agent {a.id}: unknown drug {a.drug}")

    # --- composition -----------------------------------------------------
    def _substances(self, drug_id: str) -> frozenset[str]:
        entry = self.drugs[drug_id]
        if not entry.ingredients:
            return frozenset({drug_id})
        return frozenset().union(*(self._substances(i) for i in entry.ingredients))

    def _all_classes(self, drug_id: str) -> frozenset[str]:
        entry = self.drugs[drug_id]
        return frozenset(entry.classes).union(*(self._all_classes(i) for i in entry.ingredients))

    def ingredients_of(self, drug_id: str) -> frozenset[str]:
        """Single substances in a drug entry (itself when it is not a combination)."""
        return self._ingredients[drug_id]

    def classes_of(self, drug_id: str) -> frozenset[str]:
        """Classes of the entry and of every ingredient."""
        return self._classes[drug_id]

    def class_name(self, class_id: str) -> str:
        return self.classes[class_id].name

    # --- free-text matching ---------------------------------------------
    def match(self, text: str) -> DrugMatch:
        """What a free-text medication, allergy or antibiotic entry refers to."""
        return _match_cached(self, text)

    def match_all(self, texts: Iterable[str]) -> list[DrugMatch]:
        return [self.match(t) for t in texts]

    def agents_named(self, text: str) -> tuple[str, ...]:
        """Protocol agents whose product the text names, in formulary order.

        Naming TMP-SMX names the combination, not trimethoprim alone.
        """
        drugs = set(self.match(text).drugs)
        return tuple(a for a, info in self.agents.items() if info.drug in drugs)

    def _scan(self, text: str) -> tuple[list[str], list[str], list[str]]:
        words = tokens(text)
        drugs: list[str] = []
        named_classes: list[str] = []
        corrected: list[str] = []
        i = 0
        while i < len(words):
            term = next(
                (t for t in self._index.get(words[i], ()) if words[i : i + len(t.words)] == t.words),
                None,
            )
            if term is None and len(words[i]) >= _FUZZY_MIN_LEN and not words[i].isdigit():
                term = self._fuzzy(words[i])
                if term:
                    corrected.append(f"{words[i]} -> {' '.join(term.words)}")
            if term is None:
                i += 1
                continue
            (drugs if term.kind == "drug" else named_classes).append(term.target)
            i += len(term.words)
        return drugs, named_classes, corrected

    def _fuzzy(self, word: str) -> _Term | None:
        hits = {t.target: t for w, t in self._single.items() if len(w) >= _FUZZY_MIN_LEN and _within_one_edit(word, w)}
        # Two different drugs one edit away: too ambiguous to guess.
        return next(iter(hits.values())) if len(hits) == 1 else None


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


@lru_cache(maxsize=4096)
def _match_cached(formulary: Formulary, text: str) -> DrugMatch:
    drugs, named, corrected = formulary._scan(text)
    drugs = _dedupe(drugs)
    ingredients = sorted(set().union(*(formulary.ingredients_of(d) for d in drugs)))
    classes = sorted(set(named).union(*(formulary.classes_of(d) for d in drugs)))
    return DrugMatch(
        text=text,
        drugs=drugs,
        ingredients=ingredients,
        classes=classes,
        named_classes=sorted(set(named)),
        spelling_corrections=corrected,
    )


# Formulary is hashed by identity for the cache above; there is one per process.
Formulary.__hash__ = object.__hash__  # type: ignore[method-assign]


def _read(name: str) -> tuple[dict, bytes]:
    raw = resources.files(_DATA_PACKAGE).joinpath(name).read_bytes()
    return tomllib.loads(raw.decode("utf-8")), raw


@cache
def read_data(name: str) -> dict:
    """One TOML file of the knowledge data package, parsed once per process; callers only read it."""
    return _read(name)[0]


@cache
def load_formulary() -> Formulary:
    parsed = {}
    digest = hashlib.sha256()
    for name in _DATA_FILES:
        data, raw = _read(name)
        parsed[name] = data
        digest.update(name.encode() + b"\0" + raw)
    return Formulary(
        drugs={k: DrugEntry(id=k, **v) for k, v in parsed["drugs.toml"].items()},
        classes={k: DrugClass(id=k, **v) for k, v in parsed["classes.toml"].items()},
        agents={k: AgentInfo(id=k, **v) for k, v in parsed["agents.toml"].items()},
        interactions=[InteractionRule(id=k, **v) for k, v in parsed["interactions.toml"].items()],
        version=digest.hexdigest()[:12],
    )
