"""Structured formulary: drugs, classes, and one protocol's options and interaction rules.

One source of truth. The drug data (drugs, brands, classes, makers, words) is
shared; each protocol adds its options (the drugs it may recommend) and its
interaction rules as data, through `build_formulary`. The protocol node matches
free-text medications and allergies through it, and the knowledge base renders
its monograph passages from it, so a rule and the passage that cites it cannot
drift apart.

Matching (knowledge/recognition.py) is on whole words, longest term first, so
"Zestoretic 20/12.5" finds lisinopril + hydrochlorothiazide and "Macrobid
(hives)" finds nitrofurantoin, while no drug is ever found inside an unrelated
word. An entry with a word nothing accounts for is not recognised: the
protocol does not trust it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, computed_field

from clinreason.formulary.recognition import Recognizer, Scan, Term, match_words

_DATA_PACKAGE = "clinreason.formulary"
_DATA_FILES = ("drugs.toml", "common_drugs.toml", "classes.toml", "makers.toml", "words.toml")
_TOKEN = re.compile(r"[a-z0-9]+")


class DrugMatch(BaseModel):
    model_config = ConfigDict(frozen=True)

    """A free-text medication, allergy or antibiotic entry and what it matched."""

    text: str
    drugs: list[str] = Field(default_factory=list)
    ingredients: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    named_classes: list[str] = Field(
        default_factory=list, description="Classes named in the text itself (e.g. 'sulfa')."
    )
    non_drug: list[str] = Field(
        default_factory=list, description="What the entry names that is not a medicine ('latex'), or 'none' for NKDA / nil."
    )
    unknown_words: list[str] = Field(
        default_factory=list, description="Words nothing in the formulary accounts for; any one leaves the entry unrecognised."
    )
    spelling_corrections: list[str] = Field(default_factory=list)
    antibacterial: bool = Field(default=False, description="The entry names an antibiotic.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def recognized(self) -> bool:
        """Fail-safe: it names something, and every word of it is accounted for."""
        return bool(self.drugs or self.classes or self.non_drug) and not self.unknown_words


class DrugEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    terms: list[str]
    # Names used only after a manufacturer prefix ("hydro" in Apo-Hydro): alone they are too vague.
    maker_terms: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    ingredients: list[str] = Field(default_factory=list)


class DrugClass(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name: str
    antibacterial: bool = False  # a current antibiotic in the medication list counts as recent use
    allergy_class: bool = False  # an allergy to any drug of the class is an allergy to the class ("sulfa")
    patient_factor: bool = False  # the class decides a complicating factor or a flag (immunosuppressants, steroids)
    duplication: bool = False  # two drugs of this class at once is a duplication to question (two ACE inhibitors)
    terms: list[str] = Field(default_factory=list)


class OptionInfo(BaseModel):
    """A drug a protocol may recommend: the facts its exclusions and monograph use."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name: str
    drug: str
    product: str
    recent_use_excluded_by: list[str] = Field(default_factory=list)
    g6pd_excluded: bool = False
    min_age: int = 0
    mechanism: str
    renal: str
    pregnancy: str
    lactation: str
    g6pd: str = ""
    adverse_effects: list[str]
    counselling: list[str]
    sources: list[str]
    extra_sections: dict[str, str] = Field(default_factory=dict)  # monograph heading -> text, beyond the standard sections


class DrugRule(BaseModel):
    """A protocol rule that drugs trigger, by ingredient or class: the shared part of an interaction
    (it excludes options) and a caution (it never changes a decision)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    rule_id: str
    title: str
    drugs: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    mechanism: str
    sources: list[str]

    @cached_property
    def _sets(self) -> tuple[frozenset[str], frozenset[str]]:
        """The rule's drugs and classes as sets, made once: a rule is tested against every entry of every
        patient. (A cached property, not a pydantic private attribute: reading one of those costs microseconds.)"""
        return frozenset(self.drugs), frozenset(self.classes)

    def triggered_by(self, ingredients: Iterable[str], classes: Iterable[str]) -> bool:
        """Whether a drug with these ingredients and classes triggers the rule (flags and age aside)."""
        drugs, own_classes = self._sets
        return not drugs.isdisjoint(ingredients) or not own_classes.isdisjoint(classes)


class InteractionRule(DrugRule):
    flags: list[str] = Field(default_factory=list)
    min_age: int | None = None
    excludes: list[str]
    advice: str
    # The monograph section's id, when the title has changed since it was first cited: chunk
    # ids stay stable so labels and stored citations keep resolving.
    section: str | None = None


class CautionRule(DrugRule):
    """A pairing that never changes a decision: the result states it with the action to take."""

    options: list[str]  # the options it concerns
    severity: str  # major | moderate | minor
    action: str
    actions: list[str] = Field(default_factory=list)  # codes 'kind:target' of what `action` asks (protocols/actions.py)
    # Words that name such a product when an entry starts with them ("Calcium 500 mg + vitamin D",
    # "magnesium"): the recognizer reads them as salt words after a drug name ("atorvastatin
    # calcium"), where they name no product of their own.
    leading_words: list[str] = Field(default_factory=list)

    def named_first(self, text: str) -> bool:
        """Whether the entry's first word (as `tokens` reads it) is one of `leading_words`."""
        return _first_token(text) in self.leading_words


@lru_cache(maxsize=8192)
def _first_token(text: str) -> str:
    """The first of `tokens(text)`, or "": every caution rule asks it of every medication entry."""
    first = _TOKEN.search(text.lower())
    return first.group() if first is not None else ""


def tokens(text: str) -> tuple[str, ...]:
    """Lower-case alphanumeric words, as retrieval (BM25 cues, rule links) reads a question."""
    return tuple(_TOKEN.findall(text.lower()))


@dataclass
class Formulary:
    drugs: dict[str, DrugEntry]
    classes: dict[str, DrugClass]
    options: dict[str, OptionInfo]
    interactions: list[InteractionRule]
    version: str
    cautions: list[CautionRule] = field(default_factory=list)
    words: dict = field(default_factory=dict, repr=False)  # words.toml: nil statements, non-drug and annotation words
    maker_prefixes: tuple[str, ...] = ()
    _ingredients: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _classes: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._check_references()
        # Closures over combination products, computed once: the hot path only looks up.
        for drug_id in self.drugs:
            self._ingredients[drug_id] = self._substances(drug_id)
            self._classes[drug_id] = self._all_classes(drug_id)
        self.recognizer = Recognizer(
            self._terms(), self.maker_prefixes,
            known_words=[w for group in self.words.get("annotation", {}).values() for w in group],
            nil=self.words.get("nil", []),
            glued_forms=self.words.get("glued_forms", []),
            combination_words=self.words.get("combination_words", []),
            same_product=lambda a, b: self._ingredients[a] == self._ingredients[b],
            guess_ok=self.relevant,
        )

    def relevant(self, drug_id: str) -> bool:
        """Whether the protocol's rules can act on this drug: an interaction rule, an option's
        ingredient (allergy, recent use), an antibiotic, or a class that refers or flags
        (immunosuppressant, systemic steroid). A spelling guess is made only to such a drug."""
        return drug_id in self._relevant

    @cached_property
    def _relevant(self) -> frozenset[str]:
        option_ingredients = {i for a in self.options.values() for i in self._ingredients[a.drug]}
        return frozenset(
            d for d, ingredients in self._ingredients.items()
            if any(r.triggered_by(ingredients, self._classes[d]) for r in [*self.interactions, *self.cautions])
            or ingredients & option_ingredients or any(self.classes[c].antibacterial for c in self._classes[d])
            or any(self.classes[c].patient_factor for c in self._classes[d])
        )

    def _terms(self) -> list[Term]:
        def term(text: str, kind: str, target: str, maker_only: bool = False) -> Term:
            return Term(match_words(text), kind, target, maker_only)

        out = [term(t, "drug", d.id) for d in self.drugs.values() for t in [d.id.replace("_", " "), *d.terms]]
        out += [term(t, "drug", d.id, maker_only=True) for d in self.drugs.values() for t in d.maker_terms]
        out += [term(t, "class", c.id) for c in self.classes.values() for t in c.terms]
        out += [term(t, "non_drug", group) for group, ts in self.words.get("non_drug", {}).items() for t in ts]
        return out

    def _check_references(self) -> None:
        for d in self.drugs.values():
            for c in d.classes:
                if c not in self.classes:
                    raise ValueError(f"drug {d.id}: unknown class {c}")
            for i in d.ingredients:
                if i not in self.drugs:
                    raise ValueError(f"drug {d.id}: unknown ingredient {i}")
        for rule in [*self.interactions, *self.cautions]:
            for c in rule.classes:
                if c not in self.classes:
                    raise ValueError(f"interaction {rule.id}: unknown class {c}")
            for d in rule.drugs:
                if d not in self.drugs:
                    raise ValueError(f"interaction {rule.id}: unknown drug {d}")
        for a in self.options.values():
            if a.drug not in self.drugs:
                raise ValueError(f"option {a.id}: unknown drug {a.drug}")

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

    def recent_use_product(self, option: str, exposed: Iterable[str]) -> str | None:
        """The product whose use (all of its ingredients among `exposed`) excludes the option, if any."""
        exposed = exposed if isinstance(exposed, (set, frozenset)) else set(exposed)
        return next((p for p in self.options[option].recent_use_excluded_by if self.ingredients_of(p) <= exposed), None)

    def class_name(self, class_id: str) -> str:
        return self.classes[class_id].name

    def interactions_triggered(self, ingredients: Iterable[str], classes: Iterable[str]) -> frozenset[str]:
        """Ids of the interaction rules a drug with these ingredients and classes triggers (`DrugRule.triggered_by`)."""
        return self._triggered(self._interaction_index, ingredients, classes)

    def cautions_triggered(self, ingredients: Iterable[str], classes: Iterable[str]) -> frozenset[str]:
        """Ids of the caution rules a drug with these ingredients and classes triggers (`DrugRule.triggered_by`)."""
        return self._triggered(self._caution_index, ingredients, classes)

    def rules_of(self, entry: DrugMatch) -> tuple[frozenset[str], frozenset[str]]:
        """(interaction rule ids, caution rule ids) an entry this formulary matched triggers
        (`interactions_triggered`, `cautions_triggered`); an entry naming one drug and no class reads a
        table built once per drug (a fifty-entry list asks it fifty times)."""
        if len(entry.drugs) == 1 and not entry.named_classes:
            return self._one_drug_rules[entry.drugs[0]]
        return self.interactions_triggered(entry.ingredients, entry.classes), self.cautions_triggered(entry.ingredients, entry.classes)

    @cached_property
    def _one_drug_rules(self) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
        """Per drug: the interaction and caution rules it triggers alone."""
        return {d: (self.interactions_triggered(self._ingredients[d], self._classes[d]),
                    self.cautions_triggered(self._ingredients[d], self._classes[d])) for d in self.drugs}

    @staticmethod
    def _triggered(index: tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]], ingredients: Iterable[str],
                   classes: Iterable[str]) -> frozenset[str]:
        by_drug, by_class = index
        hits = [by_drug[i] for i in ingredients if i in by_drug] + [by_class[c] for c in classes if c in by_class]
        return frozenset().union(*hits) if hits else frozenset()

    @cached_property
    def _interaction_index(self) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        return _rule_index(self.interactions)

    @cached_property
    def _caution_index(self) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        return _rule_index(self.cautions)

    @cached_property
    def flag_interactions(self) -> tuple[InteractionRule, ...]:
        """Interaction rules that an input flag (not only a drug) triggers, in file order."""
        return tuple(rule for rule in self.interactions if rule.flags)

    def _composition(self, drugs: tuple[str, ...], named: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        """(ingredients, classes, antibacterial) of an entry naming these drugs and classes, sorted. An entry
        naming one drug and no class (nearly all of them) reads a table built once from the data."""
        if not named and len(drugs) == 1:
            return self._one_drug[drugs[0]]
        if not (drugs or named):
            return (), (), False  # an entry naming nothing (an unknown word, "latex")
        return self._compose(drugs, named)

    def _compose(self, drugs: tuple[str, ...], named: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        ingredients = tuple(sorted(set().union(*map(self._ingredients.__getitem__, drugs))))
        classes = tuple(sorted(set(named).union(*map(self._classes.__getitem__, drugs))))
        return ingredients, classes, not self.antibacterial_classes.isdisjoint(classes)

    @cached_property
    def _one_drug(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]]:
        return {d: self._compose((d,), ()) for d in self.drugs}

    def cautions_of(self, option: str) -> tuple[CautionRule, ...]:
        """The caution rules that concern an option, in file order."""
        return self._cautions_by_option.get(option, ())

    @cached_property
    def _cautions_by_option(self) -> dict[str, tuple[CautionRule, ...]]:
        return {o: tuple(r for r in self.cautions if o in r.options) for o in {o for r in self.cautions for o in r.options}}

    @cached_property
    def antibacterial_classes(self) -> frozenset[str]:
        return frozenset(c for c, info in self.classes.items() if info.antibacterial)

    @cached_property
    def interaction_excluded(self) -> frozenset[str]:
        """Options some interaction rule excludes."""
        return frozenset(o for rule in self.interactions for o in rule.excludes)

    @cached_property
    def duplication_classes(self) -> tuple[str, ...]:
        """Classes of which two drugs at once is a duplication to question, sorted by id."""
        return tuple(sorted(c for c, info in self.classes.items() if info.duplication))

    @cached_property
    def allergy_classes(self) -> frozenset[str]:
        """Classes an allergy to one member of spreads to (`allergy_class`)."""
        return frozenset(c for c, info in self.classes.items() if info.allergy_class)

    # --- free-text matching ---------------------------------------------
    def match(self, text: str, *, allergy: bool = False) -> DrugMatch:
        """What a free-text medication, allergy (`allergy=True`: non-drug allergens count) or
        antibiotic entry refers to, with spelling tolerance."""
        return _match_cached(self, text, allergy)

    def find(self, text: str) -> DrugMatch:
        """The drugs and classes a piece of prose names (a question, a passage, an agent's sentence):
        exact terms only, no spelling guesses, so scanning a passage costs no edit-distance search."""
        return _find_cached(self, text)

    def match_all(self, texts: Iterable[str], *, allergy: bool = False) -> list[DrugMatch]:
        return [self.match(t, allergy=allergy) for t in texts]

    def options_named(self, text: str) -> tuple[str, ...]:
        """Protocol options whose product the text names, in formulary order.

        Naming TMP-SMX names the combination, not trimethoprim alone.
        """
        drugs = set(self.find(text).drugs)
        return tuple(a for a, info in self.options.items() if info.drug in drugs)


def _rule_index(rules: Iterable[DrugRule]) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """(drug -> ids of the rules it triggers, class -> the same): an entry's rules in a few lookups, not a test of every rule."""
    by_drug: dict[str, set[str]] = {}
    by_class: dict[str, set[str]] = {}
    for rule in rules:
        for d in rule.drugs:
            by_drug.setdefault(d, set()).add(rule.id)
        for c in rule.classes:
            by_class.setdefault(c, set()).add(rule.id)
    return {k: frozenset(v) for k, v in by_drug.items()}, {k: frozenset(v) for k, v in by_class.items()}


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


@lru_cache(maxsize=8192)
def _match_cached(formulary: Formulary, text: str, allergy: bool = False) -> DrugMatch:
    return _to_match(formulary, text, formulary.recognizer.scan(text, allergy=allergy))


@lru_cache(maxsize=8192)
def _find_cached(formulary: Formulary, text: str) -> DrugMatch:
    return _to_match(formulary, text, formulary.recognizer.scan(text, tolerant=False))


def _to_match(formulary: Formulary, text: str, found: Scan) -> DrugMatch:
    # (one drug and no class is nearly every entry: spared the dedupe and the sort, 4% of a 50-entry list)
    drugs = tuple(dict.fromkeys(found.drugs)) if len(found.drugs) > 1 else tuple(found.drugs)
    named = tuple(sorted(set(found.classes))) if found.classes else ()
    ingredients, classes, antibacterial = formulary._composition(drugs, named)
    return DrugMatch(
        text=text,
        drugs=drugs,
        ingredients=ingredients,
        classes=classes,
        named_classes=named,
        non_drug=_dedupe(found.non_drug) if found.non_drug else [],
        unknown_words=_dedupe(found.unknown) if found.unknown else [],
        spelling_corrections=found.corrections,
        antibacterial=antibacterial,
    )


# Formulary is hashed by identity for the cache above; there is one per protocol, built once.
Formulary.__hash__ = object.__hash__  # type: ignore[method-assign]


def _read(name: str) -> tuple[dict, bytes]:
    raw = resources.files(_DATA_PACKAGE).joinpath("data", name).read_bytes()
    return tomllib.loads(raw.decode("utf-8")), raw


@cache
def read_data(name: str) -> dict:
    """One TOML file of the formulary data, parsed once per process; callers only read it."""
    return _read(name)[0]


@cache
def _core() -> tuple[dict[str, dict], bytes]:
    parsed = {}
    digest = hashlib.sha256()
    for name in _DATA_FILES:
        data, raw = _read(name)
        parsed[name] = data
        digest.update(name.encode() + b"\0" + raw)
    return parsed, digest.digest()


def build_formulary(options: dict[str, dict], interactions: dict[str, dict], cautions: dict[str, dict] | None = None, *,
                    tables: bytes = b"") -> Formulary:
    """The shared drug data plus one protocol's options, interaction rules and cautions (their TOML tables).

    `tables` is the raw bytes the protocol read them from, so the version changes with them."""
    parsed, core_digest = _core()
    drug_tables = {**parsed["drugs.toml"]}
    for k, v in parsed["common_drugs.toml"].items():
        if k in drug_tables:
            raise ValueError(f"drug {k} is defined in both drugs.toml and common_drugs.toml")
        drug_tables[k] = v
    return Formulary(
        words=parsed["words.toml"],
        maker_prefixes=tuple(parsed["makers.toml"]["prefixes"]),
        drugs={k: DrugEntry(id=k, **v) for k, v in drug_tables.items()},
        classes={k: DrugClass(id=k, **v) for k, v in parsed["classes.toml"].items()},
        options={k: OptionInfo(id=k, **v) for k, v in options.items()},
        interactions=[InteractionRule(id=k, **v) for k, v in interactions.items()],
        cautions=[CautionRule(id=k, **v) for k, v in (cautions or {}).items()],
        version=hashlib.sha256(core_digest + tables).hexdigest()[:12],
    )
