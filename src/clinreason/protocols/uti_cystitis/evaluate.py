"""Deterministic assessment of acute uncomplicated cystitis.

A pure function of (patient, profile, formulary): no I/O, no clock, no
randomness, so the same input always gives the same result. The order of
evaluation follows the protocol file; the first step that applies decides.
Every agent is evaluated whatever the decision, so a referral note can still
say which agents a physician should avoid and why.
"""

from __future__ import annotations

from collections.abc import Iterable

from clinreason.formulary import DrugMatch, Formulary, InteractionRule
from clinreason.protocols.profile import rule_hits
from clinreason.protocols.result import (
    Caution,
    Exclusion,
    Flag,
    OptionEvaluation,
    ProtocolResult,
    UnverifiedEntry,
    entry_flags,
    same_drug_flags,
)
from clinreason.protocols.uti_cystitis.patient import Patient, PregnancyStatus, RenalFunction, Sex
from clinreason.protocols.uti_cystitis.profile import PROTOCOL_ID, PROTOCOL_VERSION, Decision
from clinreason.protocols.uti_cystitis.profile import UtiProfile as Profile
from clinreason.protocols.uti_cystitis.review import medication_review

# Step 1: red-flag field -> rule id.
RED_FLAGS = {
    "fever": "RF-FEVER",
    "rigors": "RF-RIGORS",
    "flank_pain": "RF-FLANK-PAIN",
    "back_pain": "RF-BACK-PAIN",
    "nausea_vomiting": "RF-NAUSEA-VOMITING",
    "systemic": "RF-SYSTEMIC",
}
# Step 3: nonspecific / alternative-diagnosis symptoms -> rule id.
NONSPECIFIC_SYMPTOMS = {
    "confusion": "CF-CONFUSION",
    "delirium": "CF-DELIRIUM",
    "gross_hematuria": "CF-GROSS-HEMATURIA",
    "vaginal_discharge": "CF-VAGINAL-SYMPTOMS",
    "vaginal_itch": "CF-VAGINAL-SYMPTOMS",
}
# Step 3: urinary-tract structure/function history -> rule id.
STRUCTURAL = {
    "catheter": "CF-CATHETER",
    "neurogenic_bladder": "CF-NEUROGENIC-BLADDER",
    "stones": "CF-STONES",
}
IMMUNOSUPPRESSANT = "immunosuppressant"
CHILDBEARING = (12, 60)  # ages outside which a recorded pregnancy is flagged for confirmation
CORTICOSTEROID = "systemic_corticosteroid"
SECONDARY_SYMPTOMS = ("urgency", "frequency", "suprapubic_pain", "hematuria")
REFERRALS = (Decision.refer_urgent, Decision.refer_complicated, Decision.refer_recurrence, Decision.refer_no_safe_option)
RECURRENCE = {
    "relapse_within_4w": "RC-RELAPSE-4W",
    "recurrent_6m": "RC-RECURRENT-6M",
    "recurrent_12m": "RC-RECURRENT-12M",
}


def _describe(m: DrugMatch, formulary: Formulary, wanted: Iterable[str] = ()) -> str:
    """'Entresto 49/51 mg BID (sacubitril/valsartan: ARNI)' style evidence."""
    wanted = set(wanted)
    names = "/".join(m.ingredients) or "/".join(m.named_classes)
    cls = [formulary.class_name(c) for c in m.classes if c in wanted]
    return f"{m.text!r} ({names}{': ' + ', '.join(cls) if cls else ''})"


# --- agent exclusions ----------------------------------------------------------
def _renal_exclusion(agent: str, patient: Patient, profile: Profile, renal: list[tuple[str, float]]) -> Exclusion | None:
    """`renal`: `patient.renal_values()`."""
    threshold = profile.renal_exclusion_below.get(agent)
    if threshold is None:
        return None
    low = [(label, v) for label, v in renal if v < threshold]
    if low:
        evidence = ", ".join(f"{label} {v:g} mL/min" for label, v in low)
        return Exclusion(
            rule_id="EX-RENAL",
            reason=f"Renal function below {threshold:g} mL/min: inadequate urinary levels and accumulation toxicity.",
            evidence=evidence,
            sources=[profile.source],
        )
    impaired = patient.renal_function_summary in (RenalFunction.impaired, RenalFunction.failure)
    if impaired and not renal:
        return Exclusion(
            rule_id="EX-RENAL",
            reason=f"Renal function recorded as {patient.renal_function_summary.value} with no eGFR/CrCl to show it is at least {threshold:g} mL/min.",
            evidence=f"renal_function_summary = {patient.renal_function_summary.value}",
            sources=[profile.source],
        )
    return None


def _allergy_exclusions(agent: str, allergies: list[DrugMatch], formulary: Formulary) -> list[Exclusion]:
    if not allergies:
        return []
    info = formulary.options[agent]
    agent_ingredients = formulary.ingredients_of(info.drug)
    agent_classes = formulary.classes_of(info.drug)
    out = []
    for m in allergies:
        # A named drug excludes agents sharing an ingredient; a named class
        # ("sulfa") excludes agents with an ingredient in that class. The
        # classes of a named drug do not spread (an allergy to one ACE
        # inhibitor is not an allergy to every drug in its class), except a
        # class marked allergy_class: a sulfadiazine allergy is a sulfa allergy.
        shared = agent_ingredients & set(m.ingredients)
        by_class = agent_classes & (set(m.named_classes) | formulary.allergy_classes.intersection(m.classes))
        if shared or by_class:
            # The allergy is to the option itself: say so, not "Nitrofurantoin contains nitrofurantoin".
            reason = (
                f"Reported allergy to {info.name}." if shared == agent_ingredients
                else f"Reported allergy: {info.name} contains {', '.join(sorted(shared))}." if shared
                else f"Reported allergy: {info.name} is a {', '.join(formulary.class_name(c) for c in sorted(by_class))}."
            )
            out.append(
                Exclusion(
                    rule_id="EX-ALLERGY",
                    reason=reason,
                    evidence=f"allergy {m.text!r}",
                    sources=[info.sources[0]],
                )
            )
    return out


def _recent_use_exclusion(agent: str, exposures: list[tuple[str, DrugMatch]], exposed: frozenset[str], formulary: Formulary,
                          profile: Profile) -> Exclusion | None:
    """`exposures`: (where it was listed, entry) for named recent antibiotics and current antibiotic medications;
    `exposed`: their ingredients."""
    # Each product that excludes the agent must have been taken whole: TMP-SMX counts as
    # trimethoprim exposure and (amended 2026-12) trimethoprim as TMP-SMX exposure, through
    # each agent's recent_use_excluded_by data.
    product = formulary.recent_use_product(agent, exposed)
    if product is None:
        return None
    shared = formulary.ingredients_of(product)
    names = [f"{where} {m.text!r}" for where, m in exposures if set(m.ingredients) & shared]
    return Exclusion(
        rule_id="EX-RECENT-USE",
        reason=f"{formulary.options[product].name} used in the last {profile.recent_antibiotic_days} days: resistance is more likely.",
        evidence=", ".join(names),
        sources=["IDSA/ESCMID 2011 (Gupta et al., Clin Infect Dis 2011;52:e103)"],
    )


def triggering(meds: list[DrugMatch], formulary: Formulary) -> dict[str, list[DrugMatch]]:
    """Interaction rule id -> the medications that trigger it (a rule none triggers is absent), found once
    for every option to read."""
    out: dict[str, list[DrugMatch]] = {}
    for m in meds:
        for rule_id in formulary.rules_of(m)[0]:
            out.setdefault(rule_id, []).append(m)
    return out


def active_interactions(patient: Patient, triggered: dict[str, list[DrugMatch]], formulary: Formulary) -> list[InteractionRule]:
    """The interaction rules this patient's medications or history flags trigger, in formulary order, found
    once for every option to read (most patients trigger none)."""
    history = patient.history
    flagged = {rule.id for rule in formulary.flag_interactions if any(getattr(history, flag) for flag in rule.flags)}
    if not (triggered or flagged):
        return []
    return [rule for rule in formulary.interactions if rule.id in triggered or rule.id in flagged]


def _interaction_exclusions(agent: str, patient: Patient, active: list[InteractionRule], triggered: dict[str, list[DrugMatch]],
                            formulary: Formulary) -> list[Exclusion]:
    """`active`: `active_interactions(...)`; `triggered`: `triggering(...)`."""
    out = []
    for rule in active:
        if agent not in rule.excludes:
            continue
        if rule.min_age is not None and patient.age < rule.min_age:
            continue
        triggers = [_describe(m, formulary, rule.classes) for m in triggered.get(rule.id, ())]
        triggers += [f"history.{flag} = true" for flag in rule.flags if getattr(patient.history, flag)]
        age = f"; age {patient.age} (rule applies from {rule.min_age})" if rule.min_age else ""
        out.append(
            Exclusion(
                rule_id=rule.rule_id,
                reason=f"{rule.title}. {rule.advice}",
                evidence="; ".join(triggers) + age,
                sources=rule.sources,
            )
        )
    return out


def _exposures(meds: list[DrugMatch], recent: list[DrugMatch]) -> list[tuple[str, DrugMatch]]:
    """Named recent antibiotics, plus antibiotics in the medication list (current use is recent use)."""
    return [("recent antibiotic", m) for m in recent] + [("current medication", m) for m in meds if m.antibacterial]


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _touched_by_unknown(profile: Profile, formulary: Formulary) -> dict[str, tuple[list[str], str]]:
    """Per input field: the agents an unknown entry there could exclude, and why."""
    order = profile.option_order
    return {
        "history.meds": ([a for a in order if a in formulary.interaction_excluded], "might be an interacting drug"),
        "history.allergies": (list(order), "might be an allergy to an agent"),
        "history.recent_antibiotics": ([a for a in order if formulary.options[a].recent_use_excluded_by], "might be recent use of an agent"),
    }


def _excluded_by(m: DrugMatch, path: str, patient: Patient, formulary: Formulary) -> set[str]:
    """The agents this one entry excludes by itself (interactions, or recent use of an agent)."""
    out: set[str] = set()
    if path == "history.meds":
        for rule in formulary.interactions:
            if (rule.min_age is None or patient.age >= rule.min_age) and rule.triggered_by(m.ingredients, m.classes):
                out.update(rule.excludes)
    if path == "history.recent_antibiotics" or m.antibacterial:
        out.update(a for a in formulary.options if formulary.recent_use_product(a, m.ingredients))
    return out


def _doubt(m: DrugMatch, path: str, agents: list[str], patient: Patient, formulary: Formulary) -> tuple[list[str], str] | None:
    """The agents an entry leaves unverified, and why; None when it is trusted.

    Not recognised: every agent it could touch. A recent antibiotic that names no antibiotic
    ("Tylenol"): the same. A medication or recent antibiotic read through a spelling guess:
    its guessed drug still excludes, and the agents the guess does not exclude stay unverified
    (the word may be another drug). Allergy guesses are trusted, as the protocol says."""
    if not m.recognized:
        unknown = f"{', '.join(repr(w) for w in m.unknown_words)} not in the formulary" if m.unknown_words else "nothing in it is in the formulary"
        return agents, f"not recognised ({unknown})"
    if path == "history.recent_antibiotics" and not (m.antibacterial or m.non_drug == ["none"]):
        return agents, "names no antibiotic"
    if m.spelling_corrections and path != "history.allergies":
        left = [a for a in agents if a not in _excluded_by(m, path, patient, formulary)]
        if left:
            return left, f"read by a spelling guess ({'; '.join(m.spelling_corrections)}), not an exact name"
    return None


def unverified_entries(patient: Patient, profile: Profile, formulary: Formulary, meds: list[DrugMatch],
                       allergies: list[DrugMatch], recent: list[DrugMatch]) -> list[UnverifiedEntry]:
    """Every entry that is not trusted, with the agents whose exclusions it could change.

    An unknown medication might be any interacting drug, so it touches the agents
    that some interaction rule excludes; an unknown allergy might be to any agent;
    an unknown recent antibiotic might be any agent with a recent-use exclusion."""
    touched = _touched_by_unknown(profile, formulary)
    out = []
    for path, entries in (("history.meds", meds), ("history.allergies", allergies), ("history.recent_antibiotics", recent)):
        agents, risk = touched[path]
        for i, m in enumerate(entries):
            doubt = _doubt(m, path, agents, patient, formulary) if agents else None
            if doubt is None:
                continue
            left, why = doubt
            names = _and([formulary.options[a].name for a in left])
            out.append(UnverifiedEntry(field=f"{path}[{i}]", entry=m.text, options=left,
                                       reason=f"{why}: it {risk}, so {names} cannot be verified"))
    return out


def evaluate_agents(
    patient: Patient,
    profile: Profile,
    formulary: Formulary,
    meds: list[DrugMatch],
    allergies: list[DrugMatch],
    recent: list[DrugMatch],
    unverified: list[UnverifiedEntry],
    triggered: dict[str, list[DrugMatch]],
) -> list[OptionEvaluation]:
    """`triggered`: `triggering(meds, formulary)`."""
    results = []
    exposures = _exposures(meds, recent)
    exposed = frozenset(i for _, m in exposures for i in m.ingredients)
    renal = patient.renal_values()
    # (each check below is skipped when nothing in the patient can make it apply: most patients
    # have no allergy, no recent antibiotic, no renal value and no interacting drug)
    renal_known = bool(renal) or patient.renal_function_summary in (RenalFunction.impaired, RenalFunction.failure)
    active = active_interactions(patient, triggered, formulary)
    g6pd = patient.history.g6pd_deficiency
    for rank, agent in enumerate(profile.option_order, start=1):
        info = formulary.options[agent]
        ex: list[Exclusion] = _allergy_exclusions(agent, allergies, formulary)
        # (no exposure, no search: every product has at least one ingredient)
        if exposed and (recent_ex := _recent_use_exclusion(agent, exposures, exposed, formulary, profile)) is not None:
            ex.append(recent_ex)
        if renal_known and (renal_ex := _renal_exclusion(agent, patient, profile, renal)) is not None:
            ex.append(renal_ex)
        if g6pd and info.g6pd_excluded:
            ex.append(
                Exclusion(
                    rule_id="EX-G6PD",
                    reason=f"G6PD deficiency: {info.name} can cause hemolytic anemia.",
                    evidence="history.g6pd_deficiency = true",
                    sources=[info.sources[0]],
                )
            )
        if patient.age < info.min_age:
            ex.append(
                Exclusion(
                    rule_id="EX-AGE",
                    reason=f"{info.name} is not established under {info.min_age} years.",
                    evidence=f"age {patient.age}",
                    sources=[info.sources[0]],
                )
            )
        if active:
            ex.extend(_interaction_exclusions(agent, patient, active, triggered, formulary))
        by = [u.field for u in unverified if agent in u.options] if unverified else []
        results.append(OptionEvaluation(option=agent, rank=rank, exclusions=ex, unverified_by=by))
    return results


# --- decision steps ------------------------------------------------------------
def _complicating(patient: Patient, profile: Profile, meds: list[DrugMatch]) -> list[tuple[str, str]]:
    hits: list[tuple[str, str]] = []
    if patient.sex is Sex.male:
        hits.append(("CF-MALE", "sex = male"))
    elif patient.sex is not Sex.female:
        hits.append(("CF-SEX-UNCONFIRMED", f"sex = {patient.sex.value}"))
    if patient.pregnant:
        hits.append(("CF-PREGNANT", "pregnancy_status = pregnant"))
    if patient.age < profile.min_age:
        hits.append(("CF-AGE-BELOW-MIN", f"age {patient.age} < {profile.min_age}"))
    # An immunosuppressant in the med list means immunocompromise even when the
    # flag was left false (conservative reading; the evidence names the drug).
    immuno = ["history.immunocompromised = true"] if patient.history.immunocompromised else []
    immuno += [f"medication {m.text!r} (immunosuppressant)" for m in meds if IMMUNOSUPPRESSANT in m.classes]
    if immuno:
        hits.append(("CF-IMMUNOCOMPROMISED", "; ".join(immuno)))
    for name, rule in STRUCTURAL.items():
        if getattr(patient.history, name):
            hits.append((rule, f"history.{name} = true"))
    renal = []
    if patient.renal_function_summary in (RenalFunction.impaired, RenalFunction.failure):
        renal.append(f"renal_function_summary = {patient.renal_function_summary.value}")
    renal += [
        f"{label} {v:g} mL/min is below {profile.renal_complicating_below:g} mL/min"
        for label, v in patient.renal_values()
        if v < profile.renal_complicating_below
    ]
    if renal:
        hits.append(("CF-RENAL", "; ".join(renal)))
    for name, rule in NONSPECIFIC_SYMPTOMS.items():
        if getattr(patient.symptoms, name):
            hits.append((rule, f"symptoms.{name} = true"))
    # vaginal discharge and itch share one rule: report it once with both details.
    merged: dict[str, str] = {}
    for rule, detail in hits:
        merged[rule] = f"{merged[rule]}; {detail}" if rule in merged else detail
    return list(merged.items())


def _decide(patient: Patient, profile: Profile, agents: list[OptionEvaluation], meds: list[DrugMatch]) -> tuple[Decision, list[tuple[str, str]]]:
    flags = [(rule, f"red_flags.{f} = true") for f, rule in RED_FLAGS.items() if getattr(patient.red_flags, f)]
    if flags:
        return Decision.refer_urgent, flags
    if patient.asymptomatic_bacteriuria:
        if patient.pregnant:
            return Decision.refer_complicated, [("ASB-PREGNANT", "asymptomatic_bacteriuria = true; pregnant")]
        return Decision.no_antibiotics, [("ASB-NO-TREATMENT", "asymptomatic_bacteriuria = true; not pregnant")]
    if complicating := _complicating(patient, profile, meds):
        return Decision.refer_complicated, complicating
    s = patient.symptoms
    present = [name for name in SECONDARY_SYMPTOMS if getattr(s, name)]
    if s.dysuria:
        criteria = ("SX-DYSURIA", "symptoms.dysuria = true")
    elif len(present) >= 2:
        criteria = ("SX-TWO-OR-MORE", "symptoms: " + ", ".join(present))
    else:
        detail = "no dysuria; " + (f"only {present[0]}" if present else "no urinary symptoms")
        return Decision.no_antibiotics, [("SX-CRITERIA-NOT-MET", detail)]
    recurrence = [(rule, f"recurrence.{f} = true") for f, rule in RECURRENCE.items() if getattr(patient.recurrence, f)]
    if recurrence:
        return Decision.refer_recurrence, [criteria, *recurrence]
    chosen = _choose(agents)
    if chosen is None:
        return Decision.refer_no_safe_option, [criteria, ("TX-NO-SAFE-OPTION", "every agent has at least one exclusion")]
    fired = [criteria, ("TX-FIRST-SAFE-AGENT", f"{chosen.option} (rank {chosen.rank})")]
    passed = [a.option for a in agents if a.allowed and a.rank < chosen.rank]
    notes = [f"passed over unverified {', '.join(passed)} while {chosen.option} is verified"] if passed else []
    if not chosen.verified:
        notes.append(f"only unverified agents remain: {chosen.option} needs the prescriber to acknowledge {', '.join(chosen.unverified_by)}")
    if notes:
        fired.append(("TX-UNVERIFIED", "; ".join(notes)))
    return Decision.recommend_treatment, fired


def _choose(agents: list[OptionEvaluation]) -> OptionEvaluation | None:
    """The first verified allowed agent; else the first allowed one (it then carries blocking checks)."""
    return next((a for a in agents if a.verified), None) or next((a for a in agents if a.allowed), None)


def _flags(patient: Patient, profile: Profile, meds: list[DrugMatch], allergies: list[DrugMatch], recent: list[DrugMatch],
           formulary: Formulary) -> list[Flag]:
    out: list[Flag] = []
    h = patient.history
    if h.antibiotics_last_90d and not h.recent_antibiotics:
        out.append(Flag(code="RECENT-ANTIBIOTIC-UNNAMED", message="Antibiotics taken in the last 90 days but not named: confirm which, since recent use of an agent excludes it."))
    out += entry_flags({"medication": meds, "allergy": allergies, "recent antibiotic": recent})
    for m in meds:
        if m.antibacterial:
            unflagged = "" if h.antibiotics_last_90d else " (although antibiotics_last_90d is false)"
            out.append(Flag(code="CURRENT-ANTIBIOTIC", message=(
                f"Medication {m.text!r} is an antibiotic: it counts as use in the last 90 days{unflagged}. "
                "Confirm what it is for and when it started; symptoms on a current course need a prescriber's review.")))
    if not h.immunocompromised:
        # Steroids are immunosuppressive only at high dose or long term, so they
        # flag the answer for review instead of firing CF-IMMUNOCOMPROMISED.
        for m in meds:
            if CORTICOSTEROID in m.classes:
                out.append(Flag(code="CORTICOSTEROID-CHECK-IMMUNE", message=(
                    f"Medication {m.text!r} is a systemic corticosteroid: high-dose or long-term use (20 mg/day of prednisone "
                    "or more for 14 days or more, IDSA 2013) is immunocompromise, a complicating factor. Confirm the "
                    "immunocompromised answer before prescribing.")))
    raas = {"acei", "arb", "arni"}
    if not h.acei_arb_use and any(set(m.classes) & raas for m in meds):
        out.append(Flag(code="ACEI-ARB-FLAG-MISMATCH", message="The medication list contains an ACE inhibitor, ARB or ARNI although ACEI_ARB_use is false; the medication list was used."))
    if patient.sex is Sex.female and patient.pregnancy_status is PregnancyStatus.unknown and patient.age < 60:
        out.append(Flag(code="PREGNANCY-UNKNOWN", message="Pregnancy status unknown: confirm before prescribing, since pregnancy is a complicating factor."))
    below = [f"{label} {v:g} mL/min" for label, v in patient.renal_values() if v < profile.nsaid_renal_caution_below]
    if patient.renal_function_summary is RenalFunction.normal and below:
        out.append(Flag(code="RENAL-INPUT-CONFLICT", message=(
            f"Renal function is recorded as normal, but {', '.join(below)} is below {profile.nsaid_renal_caution_below:g} "
            "mL/min: the measured value was used; confirm which is right.")))
    if patient.renal_function_summary is RenalFunction.unknown and not patient.renal_values() and patient.age >= 65:
        out.append(Flag(code="RENAL-UNKNOWN", message="Renal function unknown in a patient 65 or older: nitrofurantoin needs eGFR/CrCl at or above the profile threshold."))
    out += _contradictions(patient, profile, meds, allergies, recent)
    return out


def _contradictions(patient: Patient, profile: Profile, meds: list[DrugMatch], allergies: list[DrugMatch],
                    recent: list[DrugMatch]) -> list[Flag]:
    """Answers that disagree with each other but are each possible: flagged for the prescriber to confirm, never
    a change to the decision (the rules read each answer as given; the impossible pairs are field errors)."""
    out: list[Flag] = []
    h = patient.history
    values = patient.renal_values()
    summary = patient.renal_function_summary
    if summary in (RenalFunction.impaired, RenalFunction.failure) and values \
            and all(v >= profile.nsaid_renal_caution_below for _, v in values):
        shown = ", ".join(f"{label} {v:g} mL/min" for label, v in values)
        out.append(Flag(code="RENAL-INPUT-CONFLICT", message=(
            f"Renal function is recorded as {summary.value}, but {shown} is at or above {profile.nsaid_renal_caution_below:g} "
            "mL/min: the recorded summary still counts as a complicating factor; confirm which is right.")))
    raas = {"acei", "arb", "arni"}
    if h.acei_arb_use and not any(set(m.classes) & raas for m in meds):
        out.append(Flag(code="ACEI-ARB-FLAG-UNMATCHED", message=(
            "ACEI_ARB_use is true but the medication list names no ACE inhibitor, ARB or ARNI: the answer was used "
            "(it excludes TMP-SMX and trimethoprim); confirm the drug and add it to the medication list.")))
    out += same_drug_flags(meds, allergies)
    for r in recent:
        current = [m for m in meds if set(m.ingredients) & set(r.ingredients)]
        if r.antibacterial and current:
            out.append(Flag(code="RECENT-ANTIBIOTIC-ALSO-CURRENT", message=(
                f"Recent antibiotic {r.text!r} is also in the medication list ({', '.join(repr(m.text) for m in current)}): "
                "confirm whether the course has finished or is still being taken.")))
    if patient.pregnant and not CHILDBEARING[0] <= patient.age < CHILDBEARING[1]:
        out.append(Flag(code="PREGNANCY-AGE-CONFLICT", message=(
            f"Pregnancy is recorded at age {patient.age}, outside the usual childbearing years: confirm both answers.")))
    if patient.symptoms.gross_hematuria and not patient.symptoms.hematuria:
        out.append(Flag(code="HEMATURIA-INPUT-CONFLICT", message=(
            "Gross (visible) hematuria is recorded but hematuria is not: the gross hematuria was used; confirm.")))
    return out


def _cautions(decision: Decision, patient: Patient, profile: Profile, formulary: Formulary, meds: list[DrugMatch],
              agents: list[OptionEvaluation]) -> list[Caution]:
    """The medication review, which never changes the decision. A treatment decision carries the cautions of
    every allowed option (a plan may use any of them; the report and the agents read those of the plan's
    option through protocols.actions.plan_actions) and those about the patient as a whole; a referral carries
    the patient-level ones, for the physician; no treatment, none."""
    if decision is Decision.recommend_treatment:
        return medication_review(patient, profile, formulary, meds, [a.option for a in agents if a.allowed])
    if decision in REFERRALS:
        return medication_review(patient, profile, formulary, meds)
    return []


def evaluate(patient: Patient, profile: Profile, formulary: Formulary) -> ProtocolResult:
    """Run the protocol for one validated patient."""
    h = patient.history
    meds = formulary.match_all(h.meds)
    allergies = formulary.match_all(h.allergies, allergy=True)
    recent = formulary.match_all(h.recent_antibiotics)
    unverified = unverified_entries(patient, profile, formulary, meds, allergies, recent)
    agents = evaluate_agents(patient, profile, formulary, meds, allergies, recent, unverified, triggering(meds, formulary))
    decision, fired = _decide(patient, profile, agents, meds)
    recommendation = alternatives = None
    blocking: list[UnverifiedEntry] = []
    cautions = _cautions(decision, patient, profile, formulary, meds, agents)
    if decision is Decision.recommend_treatment:
        chosen = _choose(agents)  # the agent _decide named in TX-FIRST-SAFE-AGENT
        assert chosen is not None  # recommend_treatment means an allowed agent exists
        recommendation = profile.regimen(chosen.option)
        others = sorted((a for a in agents if a.allowed and a is not chosen), key=lambda a: (not a.verified, a.rank))
        alternatives = [profile.regimen(a.option) for a in others]
        blocking = [u for u in unverified if chosen.option in u.options]
    return ProtocolResult(
        protocol_id=PROTOCOL_ID,
        protocol_version=PROTOCOL_VERSION,
        profile_id=profile.id,
        profile_version=profile.version,
        decision=decision.value,
        rules_fired=rule_hits(__package__, fired, profile),
        options=agents,
        recommendation=recommendation,
        alternatives=alternatives or [],
        follow_up=profile.follow_up if decision is Decision.recommend_treatment else None,
        flags=_flags(patient, profile, meds, allergies, recent, formulary),
        unverified_entries=unverified,
        blocking_checks=blocking,
        medications=meds,
        allergies=allergies,
        recent_antibiotics=recent,
        cautions=cautions,
    )
