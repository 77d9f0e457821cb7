"""Deterministic assessment for Lyme disease post-exposure prophylaxis.

A pure function of (patient, profile, formulary). The order of evaluation is
the protocol file's, first that applies wins: symptoms (refer), then all
high-risk criteria (any not met: no prophylaxis), then contraindications of
the one option (refer), then prophylaxis. The option is evaluated whatever
the decision, so a referral note can still say why a physician should not
give it. What the formulary does not recognise is not trusted: an unknown
medication might be a retinoid, an unknown allergy a tetracycline.
"""

from __future__ import annotations

import math

from clinreason.formulary import DrugMatch, Formulary
from clinreason.protocols.lyme_pep.patient import Patient, PregnancyStatus, Sex
from clinreason.protocols.lyme_pep.profile import PROTOCOL_ID, PROTOCOL_VERSION, Decision, LymeProfile
from clinreason.protocols.profile import rule_hits
from clinreason.protocols.result import (
    Caution,
    Exclusion,
    Flag,
    OptionEvaluation,
    ProtocolResult,
    Regimen,
    UnverifiedEntry,
    entry_flags,
    same_drug_flags,
)

CHILDBEARING = (12, 60)  # ages at which an unknown pregnancy status is not ruled out (as the cystitis protocol's flag)
SYMPTOMS = {
    "erythema_migrans": "SX-ERYTHEMA-MIGRANS",
    "fever": "SX-FEVER",
    "chills": "SX-CHILLS",
    "headache": "SX-HEADACHE",
    "stiff_neck": "SX-STIFF-NECK",
    "fatigue": "SX-FATIGUE",
    "decreased_appetite": "SX-DECREASED-APPETITE",
    "muscle_joint_aches": "SX-MUSCLE-JOINT-ACHES",
    "joint_swelling": "SX-JOINT-SWELLING",
    "swollen_lymph_nodes": "SX-SWOLLEN-LYMPH-NODES",
}


# --- the option ----------------------------------------------------------------------
def _allergy(option: str, allergies: list[DrugMatch], formulary: Formulary) -> list[Exclusion]:
    """An allergy to the option or to any drug of its class (every tetracycline), annotations ignored."""
    info = formulary.options[option]
    own, classes = formulary.ingredients_of(info.drug), formulary.classes_of(info.drug)
    out = []
    for m in allergies:
        shared = own & set(m.ingredients)
        by_class = classes & (set(m.classes) | set(m.named_classes))
        if shared or by_class:
            # The allergy is to the option itself: say so, not "Doxycycline contains doxycycline".
            reason = (f"Reported allergy to {info.name}." if shared == own
                      else f"Reported allergy: {info.name} contains {', '.join(sorted(shared))}." if shared
                      else f"Reported allergy: {info.name} shares its class ({', '.join(formulary.class_name(c) for c in sorted(by_class))}).")
            out.append(Exclusion(rule_id="CI-TETRACYCLINE-ALLERGY", reason=reason,
                                 evidence=f"allergy {m.text!r}", sources=[info.sources[0]]))
    return out


def _interactions(option: str, meds: list[DrugMatch], formulary: Formulary) -> list[Exclusion]:
    out: list[Exclusion] = []
    for rule in formulary.interactions if meds else ():
        triggers = [f"{m.text!r} ({', '.join(formulary.class_name(c) for c in m.classes if c in rule.classes) or '/'.join(m.ingredients)})"
                    for m in meds if option in rule.excludes and rule.triggered_by(m.ingredients, m.classes)]
        if triggers:
            out.append(Exclusion(rule_id=rule.rule_id, reason=f"{rule.title}. {rule.advice}", evidence="; ".join(triggers),
                                 sources=rule.sources))
    return out


def _unverified(patient: Patient, meds: list[DrugMatch], allergies: list[DrugMatch], formulary: Formulary,
                options: list[str]) -> list[UnverifiedEntry]:
    """Entries that are not trusted. An unknown medication might be an interacting drug (a retinoid), so it
    leaves every option with an interaction exclusion unverified; an unknown allergy might be to any option.
    A spelling guess is trusted only when what it reads excludes an option: a guess that lands on another
    drug ("Tetramycin" read as tobramycin) may be a misspelt tetracycline, so it stays unverified too.
    Pregnancy not ruled out in a person who could be pregnant is a check of the same kind."""
    interacting = [o for o in options if any(o in r.excludes for r in formulary.interactions)]
    out = []
    for path, entries, touched, risk, excludes in (
            ("history.meds", meds, interacting, "might be an interacting drug",
             lambda m: any(r.triggered_by(m.ingredients, m.classes) for r in formulary.interactions)),
            ("history.allergies", allergies, options, "might be an allergy to an option",
             lambda m: bool(_allergy(options[0], [m], formulary)) if options else False)):
        for i, m in enumerate(entries):
            if not touched:
                continue
            if not m.recognized:
                unknown = f"{', '.join(repr(w) for w in m.unknown_words)} not in the formulary" if m.unknown_words else \
                    "nothing in it is in the formulary"
                why = f"not recognised ({unknown})"
            elif m.spelling_corrections and not excludes(m):
                why = f"read by a spelling guess ({'; '.join(m.spelling_corrections)}), not an exact name"
            else:
                continue
            names = ", ".join(formulary.options[o].name for o in touched)
            out.append(UnverifiedEntry(field=f"{path}[{i}]", entry=m.text, options=list(touched),
                                       reason=f"{why}: it {risk}, so {names} cannot be verified"))
    if patient.sex is Sex.female and patient.pregnancy_status is PregnancyStatus.unknown and CHILDBEARING[0] <= patient.age < CHILDBEARING[1]:
        names = ", ".join(formulary.options[o].name for o in options)
        out.append(UnverifiedEntry(field="pregnancy_status", entry="unknown", options=list(options),
                                   reason=f"pregnancy is not ruled out and would contraindicate it, so {names} cannot be verified"))
    return out


def evaluate_options(patient: Patient, profile: LymeProfile, formulary: Formulary, meds: list[DrugMatch],
                     allergies: list[DrugMatch], unverified: list[UnverifiedEntry]) -> list[OptionEvaluation]:
    out = []
    for rank, option in enumerate(profile.option_order, start=1):
        ex = _allergy(option, allergies, formulary)
        if patient.pregnant and profile.pregnancy == "refer":
            ex.append(Exclusion(rule_id="CI-PREGNANT", reason="Pregnancy: this protocol refers rather than give a tetracycline.",
                                evidence="pregnancy_status = pregnant", sources=[profile.source]))
        ex += _interactions(option, meds, formulary)
        by = [u.field for u in unverified if option in u.options]
        out.append(OptionEvaluation(option=option, rank=rank, exclusions=ex, unverified_by=by))
    return out


# --- dose ------------------------------------------------------------------------------
def _round_half_up(value: float, step: int) -> int:
    return int(math.floor(value / step + 0.5)) * step


def regimen(option: str, patient: Patient, profile: LymeProfile) -> Regimen:
    """The single dose: the profile's adult regimen, or for a child mg/kg capped and rounded."""
    base = profile.regimen(option)
    if patient.age >= profile.child_age_below:
        return base if base.note is None else base.model_copy(update={"note": None})
    assert patient.weight_kg is not None  # the input check requires it for a child
    raw = patient.weight_kg * profile.child_mg_per_kg
    step = profile.child_rounding_mg
    # Round, then cap (the profile guarantees the cap is a whole number of steps), never below one step.
    mg = min(max(_round_half_up(raw, step), step), profile.child_max_mg)
    cap = f", capped at {profile.child_max_mg} mg" if raw > profile.child_max_mg else ""
    note = (f"{profile.child_mg_per_kg:g} mg/kg x {patient.weight_kg:g} kg = {raw:.1f} mg{cap}, "
            f"rounded to the nearest {profile.child_rounding_mg} mg.")
    return base.model_copy(update={"dose": f"{mg} mg", "note": note})


# --- decision --------------------------------------------------------------------------
def _criteria_not_met(patient: Patient, profile: LymeProfile) -> list[tuple[str, str]]:
    t = patient.tick
    out = []
    hours = patient.hours_since_removal
    if hours > profile.window_hours:
        out.append(("HR-WINDOW-EXCEEDED", f"removed {hours:g} h ago (window {profile.window_hours:g} h)"))
    if not t.higher_risk_area:
        out.append(("HR-NOT-RISK-AREA", "tick.higher_risk_area = false"))
    if t.estimated_hours_attached < profile.min_attachment_hours:
        out.append(("HR-ATTACHMENT-SHORT", f"attached about {t.estimated_hours_attached:g} h (minimum {profile.min_attachment_hours:g} h)"))
    return out


def _decide(patient: Patient, profile: LymeProfile, option: OptionEvaluation) -> tuple[Decision, list[tuple[str, str]]]:
    symptoms = [(rule, f"symptoms.{name} = true") for name, rule in SYMPTOMS.items() if getattr(patient.symptoms, name)]
    if symptoms:
        return Decision.refer_symptomatic, symptoms
    if missed := _criteria_not_met(patient, profile):
        return Decision.no_prophylaxis, missed
    if option.exclusions:
        merged: dict[str, str] = {}
        for x in option.exclusions:
            merged[x.rule_id] = f"{merged[x.rule_id]}; {x.evidence}" if x.rule_id in merged else x.evidence
        return Decision.refer_contraindicated, list(merged.items())
    child = patient.age < profile.child_age_below
    fired = [("TX-PROPHYLAXIS-CHILD", f"age {patient.age} < {profile.child_age_below}; weight {patient.weight_kg:g} kg") if child
             else ("TX-PROPHYLAXIS-ADULT", f"age {patient.age}")]
    if not option.verified:
        fired.append(("TX-UNVERIFIED", f"{option.option} needs the prescriber to acknowledge {', '.join(option.unverified_by)}"))
    return Decision.recommend_prophylaxis, fired


def _option_cautions(patient: Patient, option: str, meds: list[DrugMatch], formulary: Formulary,
                     profile: LymeProfile) -> list[Caution]:
    out = []
    for rule in formulary.cautions_of(option) if meds else ():
        hits = [f"{m.text!r}" for m in meds if rule.triggered_by(m.ingredients, m.classes) or rule.named_first(m.text)]
        if hits:
            out.append(Caution(rule_id=rule.rule_id, option=option, severity=rule.severity, message=rule.title,
                               action=rule.action, actions=list(rule.actions), evidence="; ".join(hits), sources=rule.sources))
    if patient.breastfeeding and profile.breastfeeding == "allowed_counsel":
        out.append(Caution(rule_id="CA-BREASTFEEDING", option=option, severity="minor",
                           message="Breastfeeding: a single dose is acceptable",
                           action="Counsel the parent to watch the infant for loose stools, rash or thrush.",
                           actions=["counsel:breastfeeding"],
                           evidence="breastfeeding = true", sources=[profile.source]))
    out.append(Caution(rule_id="CA-COUNSEL", option=option, severity="counsel", message="Counselling every patient receives",
                       action="Take with a full glass of water and stay upright for 30 minutes; with food if the stomach is upset; "
                              "protect the skin from the sun for the next few days.",
                       actions=["counsel:administration", "counsel:sun-protection"],
                       evidence="every prophylaxis", sources=[formulary.options[option].sources[0]]))
    return out


def _cautions(decision: Decision, patient: Patient, options: list[OptionEvaluation], meds: list[DrugMatch],
              formulary: Formulary, profile: LymeProfile) -> list[Caution]:
    """The medication review, which never changes the decision. Prophylaxis carries the cautions of every
    allowed option (the report and the agents read the plan's through protocols.actions.plan_actions); a
    referral would carry those about the patient as a whole (option None), of which this protocol has none
    yet; no prophylaxis, none."""
    if decision is Decision.recommend_prophylaxis:
        return [c for o in options if o.allowed for c in _option_cautions(patient, o.option, meds, formulary, profile)]
    return []


def _flags(patient: Patient, meds: list[DrugMatch], allergies: list[DrugMatch]) -> list[Flag]:
    out = []
    if patient.tick.still_attached:
        out.append(Flag(code="TICK-ATTACHED", message=(
            "The tick is still attached: remove it now with fine-tipped tweezers close to the skin, pulling steadily "
            "without twisting or squeezing; keep it in a sealed container. Time since removal counts as 0 hours.")))
    out += entry_flags({"medication": meds, "allergy": allergies})
    if patient.sex is Sex.female and patient.pregnancy_status is PregnancyStatus.unknown and CHILDBEARING[0] <= patient.age < CHILDBEARING[1]:
        out.append(Flag(code="PREGNANCY-UNKNOWN", message=(
            "Pregnancy status unknown: pregnancy is a contraindication in this protocol, so approval waits for the "
            "prescriber to confirm it is ruled out (a blocking check).")))
    out += _contradictions(patient, meds, allergies)
    for m in meds:
        if "tetracycline" in m.classes:
            out.append(Flag(code="CURRENT-TETRACYCLINE", message=(
                f"Medication {m.text!r} is already a tetracycline: confirm what it is for and whether a prophylactic dose "
                "adds anything before giving doxycycline on top of it.")))
    return out


def _contradictions(patient: Patient, meds: list[DrugMatch], allergies: list[DrugMatch]) -> list[Flag]:
    """Answers that disagree with each other but are each possible: flagged for the prescriber to confirm, never
    a change to the decision (the impossible pairs, such as male and pregnant, are field errors)."""
    out = same_drug_flags(meds, allergies)
    if patient.breastfeeding and (patient.sex is Sex.male or patient.age < CHILDBEARING[0]):
        who = f"sex {patient.sex.value}" if patient.sex is Sex.male else f"age {patient.age}"
        out.append(Flag(code="BREASTFEEDING-INPUT-CONFLICT", message=(
            f"Breastfeeding is recorded with {who}: confirm; the breastfeeding counselling was kept.")))
    if patient.pregnant and not CHILDBEARING[0] <= patient.age < CHILDBEARING[1]:
        out.append(Flag(code="PREGNANCY-AGE-CONFLICT", message=(
            f"Pregnancy is recorded at age {patient.age}, outside the usual childbearing years: confirm both answers.")))
    return out


def evaluate(patient: Patient, profile: LymeProfile, formulary: Formulary) -> ProtocolResult:
    """Run the protocol for one validated patient."""
    meds = formulary.match_all(patient.history.meds)
    allergies = formulary.match_all(patient.history.allergies, allergy=True)
    unverified = _unverified(patient, meds, allergies, formulary, profile.option_order)
    options = evaluate_options(patient, profile, formulary, meds, allergies, unverified)
    option = options[0]  # one option: doxycycline
    decision, fired = _decide(patient, profile, option)
    if patient.tick.still_attached:
        fired.append(("FL-TICK-ATTACHED", "tick.still_attached = true: remove it first; counts as 0 h since removal"))
    recommendation = None
    blocking: list[UnverifiedEntry] = []
    cautions = _cautions(decision, patient, options, meds, formulary, profile)
    if decision is Decision.recommend_prophylaxis:
        recommendation = regimen(option.option, patient, profile)
        blocking = [u for u in unverified if option.option in u.options]
    return ProtocolResult(
        protocol_id=PROTOCOL_ID,
        protocol_version=PROTOCOL_VERSION,
        profile_id=profile.id,
        profile_version=profile.version,
        decision=decision.value,
        rules_fired=rule_hits(__package__, fired, profile),
        options=options,
        recommendation=recommendation,
        # Every decision: watch for symptoms for 30 days; the primary care provider hears of a prescription only.
        follow_up=profile.follow_up if recommendation else profile.follow_up_without_prescription(),
        flags=_flags(patient, meds, allergies),
        unverified_entries=unverified,
        blocking_checks=blocking,
        medications=meds,
        allergies=allergies,
        cautions=cautions,
    )
