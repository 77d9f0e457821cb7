"""The cystitis protocol's medication review: combinations, kidney function and duplications that
never change the decision; each is stated with the action the prescriber or patient takes."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from functools import cache
from importlib import resources

from clinreason.formulary import DrugMatch, Formulary
from clinreason.protocols.profile import load_rules
from clinreason.protocols.result import Caution
from clinreason.protocols.uti_cystitis.patient import Patient
from clinreason.protocols.uti_cystitis.profile import UtiProfile

NSAID = "nsaid"


@cache
def _combinations() -> tuple[dict, ...]:
    """The combinations of medication_review.toml, each with its groups' classes as sets (`needed`)."""
    raw = tomllib.loads(resources.files(__package__).joinpath("medication_review.toml").read_text("utf-8"))
    return tuple({"id": k, **v, "needed": tuple(frozenset(classes) for classes in v["all_of"])} for k, v in raw.items())


def _caution(rule_id: str, severity: str, action: str, actions: list[str], evidence: str, sources: list[str],
             profile: UtiProfile) -> Caution:
    rule = load_rules(__package__)[rule_id]
    return Caution(rule_id=rule_id, severity=severity, message=profile.rule_title(rule).removeprefix("Caution: "),
                   action=action, actions=actions, evidence=evidence, sources=sources)


def _with(meds: list[tuple[DrugMatch, frozenset[str]]], classes: list[str]) -> list[DrugMatch]:
    """`meds`: (entry, its classes as a set)."""
    return [m for m, own in meds if not own.isdisjoint(classes)]


def option_cautions(formulary: Formulary, meds: list[DrugMatch], options: Iterable[str]) -> list[Caution]:
    """The cautions of each option (cautions.toml) for this medication list, in the options' order."""
    out: list[Caution] = []
    if not meds:
        return out  # every option caution is about a medication the patient takes
    found: dict[str, list[str]] = {}  # rule id -> the entries that name it, once whichever options share it
    fired: list[frozenset[str]] | None = None  # per entry, computed on the first rule that needs it
    for option in options:
        for rule in formulary.cautions_of(option):
            if rule.id not in found:
                fired = fired if fired is not None else [formulary.rules_of(m)[1] for m in meds]
                found[rule.id] = [repr(m.text) for m, ids in zip(meds, fired) if rule.id in ids or rule.named_first(m.text)]
            if hits := found[rule.id]:
                out.append(Caution(rule_id=rule.rule_id, option=option, severity=rule.severity, message=rule.title,
                                   action=rule.action, actions=list(rule.actions), evidence="; ".join(hits), sources=rule.sources))
    return out


def patient_cautions(patient: Patient, profile: UtiProfile, formulary: Formulary, meds: list[DrugMatch]) -> list[Caution]:
    """The findings about the patient as a whole (option None): combinations, kidney function, duplicates."""
    out: list[Caution] = []
    if not meds:
        return out  # each is about the medications: a combination, an NSAID, a duplicate
    stated: set[str] = set()
    with_classes = [(m, frozenset(m.classes)) for m in meds]
    present = frozenset().union(*(own for _, own in with_classes))
    for combo in _combinations():
        # (a combination one of whose groups no entry can fill is refused without listing the groups)
        if combo["family"] in stated or any(present.isdisjoint(classes) for classes in combo["needed"]):
            continue
        groups = [_with(with_classes, classes) for classes in combo["all_of"]]
        stated.add(combo["family"])
        evidence = "; ".join(dict.fromkeys(repr(m.text) for g in groups for m in g))
        out.append(_caution(combo["rule_id"], combo["severity"], combo["action"], combo.get("actions", []), evidence,
                            combo["sources"], profile))
    nsaids = _with(with_classes, [NSAID])
    low = [(label, v) for label, v in patient.renal_values() if v < profile.nsaid_renal_caution_below]
    if nsaids and low:
        rule = load_rules(__package__)["CA-NSAID-RENAL"]
        out.append(_caution("CA-NSAID-RENAL", "moderate",
                            "Avoid the NSAID while unwell; acetaminophen for pain; tell the NSAID's prescriber.",
                            ["hold:nsaid", "counsel:acetaminophen", "notify:nsaid-prescriber"],
                            "; ".join(repr(m.text) for m in nsaids) + "; " + ", ".join(f"{lab} {v:g} mL/min" for lab, v in low),
                            [rule.source], profile))
    out += _duplicates(meds, formulary, profile)
    return out


def medication_review(patient: Patient, profile: UtiProfile, formulary: Formulary, meds: list[DrugMatch],
                      options: Iterable[str] = ()) -> list[Caution]:
    """The findings for this medication list: the cautions of each of `options` (the allowed ones), then
    those about the patient as a whole. Pure: the same list always gives the same findings, in order."""
    return option_cautions(formulary, meds, options) + patient_cautions(patient, profile, formulary, meds)


def _duplicates(meds: list[DrugMatch], formulary: Formulary, profile: UtiProfile) -> list[Caution]:
    out: list[Caution] = []
    if len(meds) < 2:
        return out  # a duplicate is two entries
    source = [load_rules(__package__)["CA-DUPLICATE-INGREDIENT"].source]
    twice = {i: ms for i, ms in _grouped(meds, "ingredients").items() if len(ms) > 1}
    for ingredient, ms in sorted(twice.items()):
        out.append(_caution("CA-DUPLICATE-INGREDIENT", "moderate",
                            "Confirm which entries the patient takes and raise the duplicate with the prescriber.",
                            ["review:duplicate", "notify:prescriber"],
                            f"{ingredient.replace('_', ' ')} in each of " + "; ".join(repr(m.text) for m in ms), source, profile))
    said: set[tuple[str, ...]] = set()
    by_class = _grouped(meds, "classes")
    repeated = set(twice)
    for cls in (c for c in formulary.duplication_classes if c in by_class):  # a class no entry has is no duplicate
        ms = by_class[cls]
        entries = tuple(m.text for m in ms)
        # Two entries of one class, not already two entries of one ingredient, nor the same entries
        # already stated under another class (two vitamin K antagonists are also two anticoagulants).
        if len({tuple(m.ingredients) for m in ms}) > 1 and repeated.isdisjoint(i for m in ms for i in m.ingredients) \
                and entries not in said:
            said.add(entries)
            out.append(_caution("CA-DUPLICATE-CLASS", "moderate",
                                "Confirm with the patient and the prescriber that both are intended.",
                                ["review:duplicate", "notify:prescriber"],
                                f"two of {formulary.class_name(cls)}: " + "; ".join(repr(m.text) for m in ms), source, profile))
    return out


def _grouped(meds: list[DrugMatch], attribute: str) -> dict[str, list[DrugMatch]]:
    """Ingredient or class (`attribute`) -> the entries that have it, in list order."""
    out: dict[str, list[DrugMatch]] = {}
    for m in meds:
        for value in getattr(m, attribute):
            out.setdefault(value, []).append(m)
    return out
