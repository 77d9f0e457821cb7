"""Lyme disease post-exposure prophylaxis (`lyme-pep`), deterministic: every rule of
protocol/lyme-pep.md, under both profiles, as this patient gets that decision for that reason."""

from __future__ import annotations

import copy
import json
import math
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinreason import InvalidPatient, assess
from clinreason.evaluation.harness import load_vignettes

NO_SYMPTOMS = {k: False for k in ("erythema_migrans", "fever", "chills", "headache", "stiff_neck", "fatigue",
                                  "decreased_appetite", "muscle_joint_aches", "joint_swelling", "swollen_lymph_nodes")}


def patient(locale="CA-ON", *, age=34, weight=70, hours_since_removal=20, attached=40, area=True, still_attached=False,
            sex="female", pregnancy="not_pregnant", breastfeeding=False, meds=(), allergies=(), **symptoms) -> dict:
    tick = {"still_attached": still_attached, "estimated_hours_attached": attached, "higher_risk_area": area, "location": "Kingston, ON"}
    if not still_attached:
        tick["hours_since_removal"] = hours_since_removal
    return {"protocol": "lyme-pep", "locale_code": locale, "age": age, "sex": sex, "pregnancy_status": pregnancy,
            "breastfeeding": breastfeeding, "weight_kg": weight, "tick": tick, "symptoms": {**NO_SYMPTOMS, **symptoms},
            "history": {"allergies": list(allergies), "meds": list(meds)}}


def run(p: dict):
    return assess(p, mode="deterministic")


def rules(a) -> list[str]:
    return a.protocol.rule_ids


# --- the bundled vignettes -------------------------------------------------------------
VIGNETTES = load_vignettes(protocol="lyme-pep")


def test_at_least_40_vignettes_cover_both_profiles_and_every_decision() -> None:
    assert len(VIGNETTES) >= 40
    assert {v.patient["locale_code"] for v in VIGNETTES} == {"CA-ON", "US"}
    assert {v.expected.decision for v in VIGNETTES} == {"recommend_prophylaxis", "refer_symptomatic", "refer_contraindicated", "no_prophylaxis"}


@pytest.mark.parametrize("v", VIGNETTES, ids=lambda v: v.id)
def test_vignette(v) -> None:
    a = run(v.patient)
    assert a.decision == v.expected.decision, v.notes
    assert a.protocol.profile_id == ("US-IDSA" if v.patient["locale_code"] == "US" else "CA-ON")
    if v.expected.dose:
        assert a.recommendation is not None and a.recommendation.dose == v.expected.dose, v.notes
    else:
        assert a.recommendation is None
    assert sorted({c.rule_id for c in a.protocol.cautions}) == sorted(v.expected.cautions or []), v.notes
    assert set(v.expected.rules) <= set(rules(a)), v.notes
    assert sorted(c.field for c in a.protocol.blocking_checks) == sorted(v.expected.blocking)


# --- the profiles differ where the guidelines differ ------------------------------------------
def test_the_same_30_hour_bite_is_prophylaxis_in_ontario_and_not_under_idsa() -> None:
    on, us = run(patient("CA-ON", attached=30)), run(patient("US", attached=30))
    assert on.decision == "recommend_prophylaxis" and on.recommendation.text == "doxycycline 200 mg PO once x single dose"
    assert us.decision == "no_prophylaxis" and rules(us) == ["HR-ATTACHMENT-SHORT"]
    assert "36" in us.protocol.rules_fired[0].title  # the title carries the profile's own minimum


@pytest.mark.parametrize(("locale", "hours", "decision"), [
    ("CA-ON", 24, "recommend_prophylaxis"), ("CA-ON", 23.5, "no_prophylaxis"),
    ("US", 36, "recommend_prophylaxis"), ("US", 35, "no_prophylaxis")])
def test_attachment_minimum_is_inclusive(locale, hours, decision) -> None:
    assert run(patient(locale, attached=hours)).decision == decision


@pytest.mark.parametrize(("removed", "decision"), [(72, "recommend_prophylaxis"), (72.5, "no_prophylaxis")])
def test_window_of_72_hours_is_inclusive(removed, decision) -> None:
    a = run(patient(hours_since_removal=removed))
    assert a.decision == decision
    if decision == "no_prophylaxis":
        assert rules(a) == ["HR-WINDOW-EXCEEDED"]


def test_every_unmet_criterion_is_named() -> None:
    a = run(patient(hours_since_removal=100, attached=5, area=False))
    assert a.decision == "no_prophylaxis" and rules(a) == ["HR-WINDOW-EXCEEDED", "HR-NOT-RISK-AREA", "HR-ATTACHMENT-SHORT"]
    assert a.protocol.follow_up is not None and "30 days" in a.protocol.follow_up.reassess  # watch for 30 days, every decision
    assert a.protocol.follow_up.notify_primary_prescriber is False  # nothing was prescribed


def test_a_tick_still_attached_counts_as_removed_now_and_is_flagged() -> None:
    a = run(patient(still_attached=True, attached=30))
    assert a.decision == "recommend_prophylaxis"
    assert "FL-TICK-ATTACHED" in rules(a) and any(f.code == "TICK-ATTACHED" and "tweezers" in f.message for f in a.protocol.flags)


# --- child dosing: mg/kg of the profile, capped at 200 mg, rounded to 5 mg ---------------------------
@pytest.mark.parametrize(("locale", "weight", "dose"), [
    ("CA-ON", 23, "90 mg"),   # 92 mg -> 90
    ("US", 23, "100 mg"),     # 101.2 mg -> 100
    ("CA-ON", 31, "125 mg"),  # 124 mg -> 125
    ("US", 14, "60 mg"),      # 61.6 mg -> 60
    ("CA-ON", 55, "200 mg"),  # 220 mg, capped
    ("US", 50, "200 mg")])    # 220 mg, capped
def test_child_dose(locale, weight, dose) -> None:
    a = run(patient(locale, age=9, weight=weight))
    assert a.decision == "recommend_prophylaxis" and "TX-PROPHYLAXIS-CHILD" in rules(a)
    assert a.recommendation.dose == dose
    assert "mg/kg" in a.recommendation.note


def test_child_means_under_18() -> None:
    assert run(patient(age=17, weight=40)).recommendation.dose == "160 mg"
    adult = run(patient(age=18, weight=40))
    assert adult.recommendation.dose == "200 mg" and "TX-PROPHYLAXIS-ADULT" in rules(adult)


@settings(max_examples=200, deadline=None)
@given(weight=st.floats(min_value=2, max_value=150, allow_nan=False), locale=st.sampled_from(["CA-ON", "US"]),
       age=st.integers(min_value=0, max_value=17))
def test_child_dose_is_the_profile_formula(weight, locale, age) -> None:
    per_kg = 4 if locale == "CA-ON" else 4.4
    a = run(patient(locale, age=age, weight=weight))
    mg = int(a.recommendation.dose.removesuffix(" mg"))
    assert mg == int(math.floor(min(weight * per_kg, 200) / 5 + 0.5)) * 5
    assert mg % 5 == 0 and 0 <= mg <= 200


# --- symptoms first, then criteria, then contraindications --------------------------------------
@pytest.mark.parametrize("symptom", sorted(NO_SYMPTOMS))
def test_any_symptom_refers_whatever_else(symptom) -> None:
    a = run(patient(pregnancy="pregnant", allergies=["doxycycline"], **{symptom: True}))
    assert a.decision == "refer_symptomatic" and a.recommendation is None
    spec = __import__("clinreason.protocols.registry", fromlist=["get_spec"]).get_spec("lyme-pep")
    assert spec.referral_urgency(a.protocol) == ("emergency_or_same_day" if symptom == "stiff_neck" else "within_24_48h")


def test_criteria_not_met_comes_before_a_contraindication() -> None:
    a = run(patient(pregnancy="pregnant", attached=10))
    assert a.decision == "no_prophylaxis" and rules(a) == ["HR-ATTACHMENT-SHORT"]


@pytest.mark.parametrize("allergy", ["Vibramycin (rash)", "doxycycline - hives", "Minocin", "minocycline", "tetracycline", "Solodyn",
                                     "tetracyclines"])
def test_tetracycline_allergy_contraindicates(allergy) -> None:
    a = run(patient(allergies=[allergy]))
    assert a.decision == "refer_contraindicated" and rules(a) == ["CI-TETRACYCLINE-ALLERGY"]


@pytest.mark.parametrize("allergy", ["sulfa", "penicillin (anaphylaxis)", "amoxicillin", "Septra"])
def test_other_antibiotic_allergies_do_not(allergy) -> None:
    assert run(patient(allergies=[allergy])).decision == "recommend_prophylaxis"


@pytest.mark.parametrize("med", ["Accutane 40 mg daily", "isotretinoin 20 mg", "Epuris", "Clarus 30mg", "acitretin 25 mg", "Soriatane"])
def test_systemic_retinoid_contraindicates(med) -> None:
    a = run(patient(meds=[med]))
    assert a.decision == "refer_contraindicated" and rules(a) == ["CI-RETINOID"]
    assert "intracranial" in a.protocol.options[0].exclusions[0].reason


def test_topical_tretinoin_is_not_a_systemic_retinoid() -> None:
    assert run(patient(meds=["tretinoin 0.025% cream"])).decision == "recommend_prophylaxis"


def test_pregnancy_is_referred_and_breastfeeding_is_counselled() -> None:
    assert rules(run(patient(pregnancy="pregnant"))) == ["CI-PREGNANT"]
    a = run(patient(breastfeeding=True))
    assert a.decision == "recommend_prophylaxis" and "CA-BREASTFEEDING" in {c.rule_id for c in a.protocol.cautions}


# --- cautions never change the decision; each carries its action -----------------------------------
@pytest.mark.parametrize(("med", "rule", "action"), [
    ("Tums 500 mg", "CA-CATIONS", "2 hours before"), ("ferrous sulfate 300 mg", "CA-CATIONS", "4 to 6 hours after"),
    ("Centrum", "CA-CATIONS", "2 hours before"), ("Pepto-Bismol", "CA-CATIONS", "2 hours before"),
    ("sucralfate 1 g", "CA-CATIONS", "2 hours before"), ("Maalox", "CA-CATIONS", "2 hours before"),
    ("Coumadin 5 mg", "CA-WARFARIN", "INR"), ("acenocoumarol", "CA-WARFARIN", "anticoagulant")])
def test_cautions(med, rule, action) -> None:
    a = run(patient(meds=[med]))
    assert a.decision == "recommend_prophylaxis"
    caution = next(c for c in a.protocol.cautions if c.rule_id == rule)
    assert action in caution.action and med in caution.evidence


def test_every_prophylaxis_carries_the_counselling_caution() -> None:
    counsel = [c for c in run(patient()).protocol.cautions if c.rule_id == "CA-COUNSEL"]
    assert len(counsel) == 1 and "upright" in counsel[0].action and "sun" in counsel[0].action


# --- what is not recognised is not trusted ---------------------------------------------------
def test_an_unrecognised_medication_is_a_blocking_check() -> None:
    a = run(patient(meds=["Xyzalonex 10 mg"]))
    assert a.decision == "recommend_prophylaxis" and "TX-UNVERIFIED" in rules(a)
    assert [c.field for c in a.protocol.blocking_checks] == ["history.meds[0]"]


def test_an_unrecognised_allergy_is_a_blocking_check() -> None:
    a = run(patient(allergies=["Zorblamycin"]))
    assert [c.field for c in a.protocol.blocking_checks] == ["history.allergies[0]"]


# --- bad input: field-level errors -------------------------------------------------------------
INVALID = json.loads(resources.files("clinreason.protocols.lyme_pep").joinpath("invalid_inputs.json").read_text("utf-8"))


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c["field"])
def test_invalid_inputs_name_the_field(case) -> None:
    with pytest.raises(InvalidPatient) as exc:
        run(case["patient"])
    fields = [e.field for e in exc.value.errors]
    assert any(f == case["field"] or f.endswith("." + case["field"]) or f.startswith(case["field"]) for f in fields), (fields, case["why"])


def test_a_child_without_weight_is_refused_with_the_profile_age() -> None:
    p = patient(age=10)
    del p["weight_kg"]
    with pytest.raises(InvalidPatient) as exc:
        run(p)
    assert [(e.field, "18" in e.message) for e in exc.value.errors] == [("weight_kg", True)]


def test_a_removed_tick_needs_its_hours() -> None:
    p = patient()
    del p["tick"]["hours_since_removal"]
    with pytest.raises(InvalidPatient) as exc:
        run(p)
    assert [e.field for e in exc.value.errors] == ["tick.hours_since_removal"]


def test_unknown_locale_and_protocol() -> None:
    with pytest.raises(InvalidPatient) as exc:
        run(patient("UK"))
    assert exc.value.errors[0].field == "locale_code" and "US" in exc.value.errors[0].message
    with pytest.raises(InvalidPatient) as exc:
        run({**patient(), "protocol": "lyme"})
    assert exc.value.errors[0].field == "protocol" and "lyme-pep" in exc.value.errors[0].message


# --- safety invariants ---------------------------------------------------------------------------
REASONS_NOT_TO_GIVE = st.sampled_from([
    {"allergies": ["Vibramycin"]}, {"allergies": ["minocycline (hives)"]}, {"pregnancy": "pregnant"},
    {"meds": ["Accutane 40 mg"]}, {"meds": ["Soriatane 25 mg"]}])


@settings(max_examples=150, deadline=None)
@given(reason=REASONS_NOT_TO_GIVE, locale=st.sampled_from(["CA-ON", "US"]), age=st.integers(0, 90),
       removed=st.floats(0, 200), attached=st.floats(0, 120), area=st.booleans(), symptom=st.sampled_from([None, *NO_SYMPTOMS]))
def test_doxycycline_is_never_recommended_when_contraindicated(reason, locale, age, removed, attached, area, symptom) -> None:
    p = patient(locale, age=age, weight=30, hours_since_removal=removed, attached=attached, area=area,
                **({symptom: True} if symptom else {}))
    for k, v in copy.deepcopy(reason).items():
        if k == "pregnancy":
            p["pregnancy_status"] = v
        else:
            p["history"][k] = v
    a = run(p)
    assert a.recommendation is None and a.decision != "recommend_prophylaxis"


@settings(max_examples=150, deadline=None)
@given(locale=st.sampled_from(["CA-ON", "US"]), removed=st.floats(0, 200), attached=st.floats(0, 120), area=st.booleans())
def test_a_recommendation_means_every_criterion_is_met(locale, removed, attached, area) -> None:
    a = run(patient(locale, hours_since_removal=removed, attached=attached, area=area))
    minimum = 24 if locale == "CA-ON" else 36
    met = removed <= 72 and area and attached >= minimum
    assert (a.decision == "recommend_prophylaxis") == met


# --- found in review ---------------------------------------------------------------------------------
@pytest.mark.parametrize("allergy", ["Terramycin (hives)", "Tetramycin", "Aureomycin", "Tetralysal", "oxytetracycline", "Nuzyra"])
def test_every_tetracycline_and_its_misspellings_contraindicate(allergy) -> None:
    assert run(patient(allergies=[allergy])).decision == "refer_contraindicated"


def test_an_allergy_guess_that_lands_on_another_drug_is_not_trusted() -> None:
    # "Tobramicin" reads as tobramycin, which excludes nothing: it might be a misspelt tetracycline.
    a = run(patient(allergies=["Tobramicin"]))
    assert a.decision == "recommend_prophylaxis" and [c.field for c in a.protocol.blocking_checks] == ["history.allergies[0]"]


@pytest.mark.parametrize("med", ["Calcium 500 mg + vitamin D", "Iron 325 mg daily", "iron pills", "magnesium 250 mg", "zinc 50 mg"])
def test_a_mineral_named_first_is_a_cation_caution(med) -> None:
    assert "CA-CATIONS" in {c.rule_id for c in run(patient(meds=[med])).protocol.cautions}


def test_a_salt_word_after_a_drug_name_is_not_a_cation() -> None:
    assert "CA-CATIONS" not in {c.rule_id for c in run(patient(meds=["atorvastatin calcium 20 mg"])).protocol.cautions}


def test_unknown_pregnancy_blocks_approval_in_a_person_who_could_be_pregnant() -> None:
    a = run(patient(pregnancy="unknown"))
    assert a.decision == "recommend_prophylaxis" and [c.field for c in a.protocol.blocking_checks] == ["pregnancy_status"]
    assert run(patient(pregnancy="unknown", age=65)).protocol.blocking_checks == []
    assert run(patient(pregnancy="unknown", sex="male")).protocol.blocking_checks == []


def test_the_smallest_child_gets_at_least_one_rounding_step_and_no_weight_below_1_kg() -> None:
    assert run(patient(age=0, weight=1)).recommendation.dose == "5 mg"
    with pytest.raises(InvalidPatient) as exc:
        run(patient(age=0, weight=0.5))
    assert exc.value.errors[0].field == "weight_kg"


def test_a_profile_typo_is_an_error_at_load_not_a_silent_allow() -> None:
    from pydantic import ValidationError

    from clinreason.protocols.lyme_pep.profile import LymeProfile
    from clinreason.protocols.registry import get_spec

    good = get_spec("lyme-pep").profile("CA-ON").model_dump()
    with pytest.raises(ValidationError):
        LymeProfile.model_validate({**good, "pregnancy": "Refer"})
    with pytest.raises(ValidationError):
        LymeProfile.model_validate({**good, "child_max_mg": 198})  # not a whole number of 5 mg steps


def test_a_tetracycline_already_taken_is_flagged() -> None:
    a = run(patient(meds=["minocycline 100 mg BID"]))
    assert any(f.code == "CURRENT-TETRACYCLINE" for f in a.protocol.flags)
