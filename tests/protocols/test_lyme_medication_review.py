"""The Lyme prophylaxis protocol's medication review (issue 17, part 1): cautions about the single dose
of doxycycline, each with its action as codes, and the pairings reviewed that need none. Each test
states the clinical fact: this patient, on that drug, gets that caution with those actions."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_uti_medication_review import check_coverage

from clinreason import assess
from clinreason.formulary.core import read_data
from clinreason.protocols.actions import action_codes, check_codes, plan_actions
from clinreason.protocols.registry import get_spec

LYME = "lyme-pep"
NO_SYMPTOMS = {k: False for k in ("erythema_migrans", "fever", "chills", "headache", "stiff_neck", "fatigue",
                                  "decreased_appetite", "muscle_joint_aches", "joint_swelling", "swollen_lymph_nodes")}


def patient(meds=(), allergies=(), locale="CA-ON", **changes) -> dict:
    p = {"protocol": LYME, "locale_code": locale, "age": 34, "sex": "female", "pregnancy_status": "not_pregnant",
         "breastfeeding": False, "weight_kg": 70,
         "tick": {"still_attached": False, "hours_since_removal": 20, "estimated_hours_attached": 40, "higher_risk_area": True},
         "symptoms": dict(NO_SYMPTOMS), "history": {"allergies": list(allergies), "meds": list(meds)}}
    for k, v in changes.items():
        if k in NO_SYMPTOMS:
            p["symptoms"][k] = v
        else:
            p[k] = v
    return p


def result(p):
    return assess(p, mode="deterministic").protocol


def cautions(p) -> dict[str, object]:
    return {c.rule_id: c for c in result(p).cautions}


def codes(p) -> set[str]:
    r = result(p)
    return action_codes(plan_actions(r, r.recommendation.agent if r.recommendation else None))


# --- the contract ------------------------------------------------------------------------------------
def test_every_caution_states_its_actions_as_codes_of_a_known_kind() -> None:
    for rule in get_spec(LYME).formulary.cautions:
        assert rule.actions and not check_codes(rule.actions), rule.rule_id
        assert rule.severity in ("moderate", "minor"), rule.rule_id  # one option: nothing to prefer over it
    built_in = result(patient(["Tums"], breastfeeding=True)).cautions
    assert {c.rule_id for c in built_in} >= {"CA-BREASTFEEDING", "CA-COUNSEL"}
    assert all(c.actions and not check_codes(c.actions) for c in built_in)


def test_every_caution_has_a_rule_passage_and_a_monograph_section() -> None:
    spec = get_spec(LYME)
    for rule in spec.formulary.cautions:
        r = spec.rules[rule.rule_id]
        assert r.step == 5 and r.decision == "" and r.title and r.source, rule.rule_id
    for profile in spec.profiles.values():
        docs = [d for d in spec.documents(profile) if d.kind == "monograph"]
        covered = {rid for d in docs for s in d.sections for rid in s.rules}
        assert {rule.rule_id for rule in spec.formulary.cautions} <= covered, profile.id


def test_doxycycline_was_reviewed_against_every_listed_class() -> None:
    check_coverage(LYME, ["doxycycline"])
    data = read_data("reviewed_pairs.toml")[LYME]
    assert {"vitamin_k_antagonist", "doac", "antiplatelet", "sulfonylurea", "cardiac_glycoside", "enzyme_inducer_anticonvulsant",
            "polyvalent_cation", "qt_prolonging", "antifolate_dmard"} <= set(data["classes"])
    assert {"metoclopramide", "probenecid", "rifampin"} <= set(data["drugs"])


# --- the clinical facts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("med", ["carbamazepine 200 mg BID", "Tegretol CR 400 mg", "Dilantin 300 mg", "phenobarbital 60 mg",
                                 "primidone 250 mg", "rifampin 600 mg daily"])
def test_an_enzyme_inducer_shortens_doxycycline_so_the_30_day_watch_matters_more(med) -> None:
    # Half-life about 7 instead of 15 hours on phenytoin, carbamazepine or a barbiturate (Penttila 1974).
    p = patient([med])
    r = result(p)
    assert r.decision == "recommend_prophylaxis" and r.recommendation.dose == "200 mg"  # no higher dose in the protocol
    c = cautions(p)["CA-ENZYME-INDUCERS"]
    assert c.severity == "moderate" and med in c.evidence and "30-day watch" in c.action
    assert {"counsel:reduced-effect", "follow-up:watch-symptoms"} <= codes(p)


def test_methotrexate_means_telling_its_prescriber() -> None:
    p = patient(["methotrexate 15 mg weekly"])
    assert "CA-METHOTREXATE" in cautions(p) and {"notify:methotrexate-prescriber", "counsel:methotrexate-toxicity"} <= codes(p)


def test_a_sulfonylurea_is_hypoglycaemia_counselling_and_repaglinide_is_nothing() -> None:
    c = cautions(patient(["glyburide 5 mg BID"]))["CA-SULFONYLUREA"]
    assert c.severity == "minor" and c.actions == ["counsel:hypoglycemia"]
    assert set(cautions(patient(["repaglinide 1 mg TID"]))) == {"CA-COUNSEL"}


def test_digoxin_is_counselling_on_toxicity() -> None:
    p = patient(["Lanoxin 0.125 mg daily"])
    assert cautions(p)["CA-DIGOXIN"].severity == "minor" and "counsel:digoxin-toxicity" in codes(p)


def test_warfarin_and_cations_keep_their_actions() -> None:
    assert {"notify:anticoagulant-prescriber", "monitor:inr"} <= codes(patient(["Coumadin 5 mg"]))
    assert "separate:cations" in codes(patient(["Tums 500 mg"]))


@pytest.mark.parametrize("med", ["Eliquis 5 mg BID", "rivaroxaban 20 mg", "dabigatran 150 mg BID", "enoxaparin 40 mg SC",
                                 "Plavix 75 mg", "ASA 81 mg", "ticagrelor 90 mg BID", "metoclopramide 10 mg TID",
                                 "probenecid 500 mg BID", "citalopram 20 mg", "amiodarone 200 mg"])
def test_reviewed_pairings_carry_no_caution(med) -> None:
    # DOACs, heparins, antiplatelets, metoclopramide, probenecid: no interaction documented; QT: doxycycline has no QT effect.
    assert set(cautions(patient([med]))) == {"CA-COUNSEL"}


def test_a_referral_or_no_prophylaxis_carries_no_option_caution() -> None:
    stiff = result(patient(["carbamazepine 200 mg BID", "Coumadin 5 mg"], stiff_neck=True))
    assert stiff.decision == "refer_symptomatic" and stiff.cautions == []
    assert action_codes(plan_actions(stiff, None)) == set()
    far = patient(["carbamazepine 200 mg BID"])
    far["tick"]["higher_risk_area"] = False
    assert result(far).decision == "no_prophylaxis" and result(far).cautions == []


# --- contradictory inputs ---------------------------------------------------------------------------
def flags(p) -> set[str]:
    return {f.code for f in result(p).flags}


def test_doxycycline_taken_and_listed_as_an_allergy_is_flagged() -> None:
    p = patient(["doxycycline 100 mg daily"], ["doxycycline (rash)"])
    assert result(p).decision == "refer_contraindicated" and {"MED-ALLERGY-CONFLICT", "CURRENT-TETRACYCLINE"} <= flags(p)
    assert "MED-ALLERGY-CONFLICT" in flags(patient(["minocycline 100 mg"], ["tetracyclines"]))  # a class allergy


def test_breastfeeding_recorded_for_a_male_or_a_child_is_flagged_and_changes_nothing() -> None:
    p = patient(sex="male", pregnancy_status="not_applicable", breastfeeding=True)
    r = result(p)
    assert "BREASTFEEDING-INPUT-CONFLICT" in {f.code for f in r.flags}
    assert r.decision == "recommend_prophylaxis" and "CA-BREASTFEEDING" in {c.rule_id for c in r.cautions}
    assert "BREASTFEEDING-INPUT-CONFLICT" in flags(patient(age=8, weight_kg=25, pregnancy_status="not_applicable", breastfeeding=True))
    assert "BREASTFEEDING-INPUT-CONFLICT" not in flags(patient(breastfeeding=True))


def test_pregnancy_at_62_is_flagged_and_still_refers() -> None:
    r = result(patient(age=62, pregnancy_status="pregnant"))
    assert r.decision == "refer_contraindicated" and "PREGNANCY-AGE-CONFLICT" in {f.code for f in r.flags}


# --- cautions never change the decision ----------------------------------------------------------------
CAUTION_ONLY = ["Tums", "ferrous sulfate 300 mg", "Coumadin 5 mg", "carbamazepine 200 mg BID", "phenobarbital 60 mg",
                "rifampin 600 mg", "methotrexate 15 mg weekly", "glyburide 5 mg", "digoxin 0.125 mg", "Eliquis 5 mg BID",
                "Plavix 75 mg", "metoclopramide 10 mg", "probenecid 500 mg"]


def _outcome(p):
    r = result(p)
    return r.decision, r.recommendation, [(o.option, o.allowed, o.exclusions, o.unverified_by) for o in r.options], r.blocking_checks


@settings(max_examples=100, deadline=None)
@given(added=st.lists(st.sampled_from(CAUTION_ONLY), min_size=1, max_size=4, unique=True),
       locale=st.sampled_from(["CA-ON", "US"]), age=st.sampled_from([8, 17, 34, 70]), attached=st.sampled_from([10, 30, 48]),
       breastfeeding=st.booleans(), symptom=st.sampled_from([None, "fever", "stiff_neck"]))
def test_a_caution_never_changes_the_decision_or_the_dose(added, locale, age, attached, breastfeeding, symptom) -> None:
    base = patient(locale=locale, age=age, weight_kg=25 if age < 18 else 70, breastfeeding=breastfeeding and age >= 17,
                   **({symptom: True} if symptom else {}))
    base["tick"]["estimated_hours_attached"] = attached
    more = copy.deepcopy(base)
    more["history"]["meds"] = added
    assert _outcome(more) == _outcome(base)
    r = result(more)
    assert all(c.action and c.actions and not check_codes(c.actions) for c in r.cautions)
    assert (r.decision == "recommend_prophylaxis") == bool(r.cautions)
