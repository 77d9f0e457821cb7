"""The cystitis protocol's medication review (issue 17, part 1): findings that never change the
decision, each with the action the prescriber or patient takes, as codes a plan can be checked against.

Each test states the clinical fact: this patient, on that drug, given that option, gets that caution
with those actions, for that reason."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinreason import assess
from clinreason.formulary.core import read_data
from clinreason.protocols.actions import KINDS, action_codes, check_codes, plan_actions
from clinreason.protocols.registry import get_spec
from clinreason.samples import load_sample

UTI = "uti-cystitis"
OPTIONS = ("nitrofurantoin", "tmp_smx", "trimethoprim", "fosfomycin")


def with_meds(meds, allergies=(), **extra) -> dict:
    p = copy.deepcopy(load_sample("uncomplicated"))
    p["history"]["meds"] = list(meds)
    p["history"]["allergies"] = list(allergies)
    p.update(extra)
    return p


def result(p):
    return assess(p, mode="deterministic").protocol


def cautions(p) -> dict[str, object]:
    return {c.rule_id: c for c in result(p).cautions}


def by_option(p) -> dict[tuple[str, str | None], object]:
    """(rule id, option) -> caution."""
    return {(c.rule_id, c.option): c for c in result(p).cautions}


def codes(p, option) -> set[str]:
    return action_codes(plan_actions(result(p), option))


# --- the contract: codes, severities, rule passages ---------------------------------------------------
def test_every_caution_rule_states_its_actions_as_codes_of_a_known_kind() -> None:
    f = get_spec(UTI).formulary
    for rule in f.cautions:
        assert rule.actions and not check_codes(rule.actions), rule.rule_id
    for combo in read_data_combinations():
        assert combo["actions"] and not check_codes(combo["actions"]), combo["rule_id"]


def read_data_combinations() -> list[dict]:
    import tomllib

    return list(tomllib.loads(get_spec(UTI).read_text("medication_review.toml")).values())


@pytest.mark.parametrize("meds", [
    ["lisinopril 10 mg", "hydrochlorothiazide 25 mg", "ibuprofen 400 mg"], ["ibuprofen 400 mg"], ["Zestoretic 20/12.5", "lisinopril 10 mg"],
    ["ramipril 5 mg", "perindopril 4 mg"], ["warfarin 5 mg", "apixaban 5 mg"], ["glyburide 5 mg", "digoxin 0.125 mg", "Maalox"],
])
def test_the_cautions_built_in_code_carry_valid_codes_too(meds) -> None:
    found = result(with_meds(meds, egfr_mL_min=45.0)).cautions
    assert found and all(c.actions and not check_codes(c.actions) for c in found)
    assert all(c.split(":", 1)[0] in KINDS for c in action_codes(plan_actions(result(with_meds(meds)), "nitrofurantoin")))


def test_major_means_choose_another_allowed_option_and_only_major_says_so() -> None:
    f = get_spec(UTI).formulary
    for rule in f.cautions:
        major = rule.severity == "major"
        assert major == ("prefer-other:option" in rule.actions), rule.rule_id
        if major:
            assert rule.action.startswith("Choose another allowed option; if none remains"), rule.rule_id
        assert rule.severity in ("major", "moderate", "minor"), rule.rule_id


def test_every_caution_has_a_rule_passage_with_a_title_and_a_source() -> None:
    spec = get_spec(UTI)
    ids = {r.rule_id for r in spec.formulary.cautions} | {c["rule_id"] for c in read_data_combinations()}
    ids |= {"CA-NSAID-RENAL", "CA-DUPLICATE-INGREDIENT", "CA-DUPLICATE-CLASS"}
    for rid in ids:
        rule = spec.rules[rid]
        assert rule.step == 7 and rule.title and rule.source, rid
        assert spec.rule_chunk_id(rid, "CA-ON"), rid


# --- every option against every listed class: a rule, or a recorded review ------------------------------
def _covered(protocol: str) -> list[tuple[str, str, str, list[tuple[str, bool]], bool]]:
    """(option, kind, target, rules covering it (rule id, in full), reviewed) for every option x listed target."""
    f = get_spec(protocol).formulary
    data = read_data("reviewed_pairs.toml")[protocol]
    reviewed = {(e["option"], "class" if "class" in e else "drug", e.get("class") or e["drug"]) for e in data["reviewed"]}
    out = []
    for kind, targets in (("class", data["classes"]), ("drug", data["drugs"])):
        for target in targets:
            members = [target] if kind == "drug" else [d for d in f.drugs if target in f.classes_of(d)]
            for option in f.options:
                rules = [(r.rule_id, (kind == "class" and target in r.classes) or kind == "drug")
                         for r in [*f.interactions, *f.cautions]
                         if option in (getattr(r, "excludes", None) or getattr(r, "options", []))
                         and any(r.triggered_by(f.ingredients_of(d), f.classes_of(d)) for d in members)]
                out.append((option, kind, target, rules, (option, kind, target) in reviewed))
    return out


def check_coverage(protocol: str, options: Iterable[str]) -> None:
    f = get_spec(protocol).formulary
    data = read_data("reviewed_pairs.toml")[protocol]
    assert set(options) == set(f.options)
    for kind, target in [("class", c) for c in data["classes"]] + [("drug", d) for d in data["drugs"]]:
        assert target in (f.classes if kind == "class" else f.drugs), target
    for e in data["reviewed"]:
        assert e["option"] in f.options and e["finding"] and e["sources"], e
        assert (e.get("class") in data["classes"]) or (e.get("drug") in data["drugs"]), e
    gaps = [(o, t) for o, _, t, rules, reviewed in _covered(protocol) if not rules and not reviewed]
    assert not gaps, gaps
    # A review that finds nothing cannot stand beside a rule that covers the whole class.
    contradictions = [(o, t, rules) for o, _, t, rules, reviewed in _covered(protocol) if reviewed and any(full for _, full in rules)]
    assert not contradictions, contradictions


def test_every_option_was_reviewed_against_every_listed_class() -> None:
    check_coverage(UTI, OPTIONS)
    data = read_data("reviewed_pairs.toml")[UTI]
    # The list: anticoagulants, antiplatelets, sulfonylureas, digoxin, phenytoin, antacids and other
    # polyvalent cations, metoclopramide, probenecid, QT-prolonging drugs.
    assert {"vitamin_k_antagonist", "doac", "heparin", "antiplatelet", "sulfonylurea", "cardiac_glycoside",
            "hydantoin_anticonvulsant", "polyvalent_cation", "qt_prolonging"} <= set(data["classes"])
    assert {"metoclopramide", "probenecid"} <= set(data["drugs"])


# --- anticoagulants and antiplatelets -----------------------------------------------------------------
def test_the_warfarin_patient_on_trimethoprim_gets_an_inr_check_and_a_word_to_the_anticoagulation_prescriber() -> None:
    a = assess(load_sample("warfarin"), mode="deterministic")
    assert a.recommendation.agent == "trimethoprim"
    inr = {c.rule_id: c for c in a.protocol.cautions}["CA-VKA-INR"]
    assert inr.option == "trimethoprim" and "3 to 5 days" in inr.action and "anticoagulant" in inr.action
    assert "Coumadin" in inr.evidence
    assert {"monitor:inr", "notify:anticoagulant-prescriber"} <= codes(load_sample("warfarin"), "trimethoprim")


@pytest.mark.parametrize("med", ["Eliquis 5 mg BID", "rivaroxaban 20 mg daily", "Pradaxa 150 mg BID", "Lixiana 60 mg",
                                 "Plavix 75 mg", "ticagrelor 90 mg BID", "prasugrel 10 mg", "ASA 81 mg"])
def test_a_doac_or_an_antiplatelet_alone_is_no_caution_on_any_option(med) -> None:
    # Reviewed (reviewed_pairs.toml): DOAC labels act on strong CYP3A4/P-gp inhibitors, none of the options is one.
    p = with_meds([med], ["Macrobid"])  # TMP-SMX first, trimethoprim and fosfomycin allowed too
    assert result(p).cautions == []


def test_an_nsaid_with_asa_is_a_bleeding_caution_about_the_patient() -> None:
    c = cautions(with_meds(["ASA 81 mg daily", "naproxen 250 mg BID"]))["CA-NSAID-ANTITHROMBOTIC"]
    assert c.option is None and c.severity == "moderate" and "acetaminophen" in c.action
    assert {"hold:nsaid", "counsel:bleeding"} <= set(c.actions)
    assert "CA-NSAID-ANTITHROMBOTIC" in cautions(with_meds(["apixaban 5 mg BID", "ibuprofen 400 mg"]))


def test_enoxaparin_with_a_trimethoprim_product_is_a_potassium_caution() -> None:
    # Heparins suppress aldosterone; trimethoprim blocks potassium excretion.
    c = by_option(with_meds(["enoxaparin 40 mg SC daily"], ["Macrobid"]))
    assert {o for r, o in c if r == "CA-HEPARIN-POTASSIUM"} == {"tmp_smx", "trimethoprim"}
    assert "monitor:potassium" in c[("CA-HEPARIN-POTASSIUM", "tmp_smx")].actions


def test_warfarin_and_apixaban_are_two_anticoagulants_stated_once() -> None:
    found = [c for c in result(with_meds(["warfarin 5 mg", "apixaban 5 mg BID"])).cautions if c.rule_id == "CA-DUPLICATE-CLASS"]
    assert len(found) == 1 and "Anticoagulant" in found[0].evidence
    assert len([c for c in result(with_meds(["warfarin 5 mg", "acenocoumarol 2 mg"])).cautions if c.rule_id == "CA-DUPLICATE-CLASS"]) == 1


# --- sulfonylureas and repaglinide ------------------------------------------------------------------
@pytest.mark.parametrize("med", ["glyburide 5 mg BID", "Diamicron MR 60 mg", "gliclazide 80 mg", "Amaryl 2 mg", "glipizide 5 mg"])
def test_a_sulfonylurea_makes_tmp_smx_a_major_hypoglycaemia_caution(med) -> None:
    # Sulfamethoxazole inhibits CYP2C9: admissions for hypoglycaemia rose about six-fold (Juurlink 2003).
    p = with_meds([med], ["Macrobid"])
    assert assess(p, mode="deterministic").recommendation.agent == "tmp_smx"  # the decision is the protocol's order
    c = by_option(p)[("CA-SULFONYLUREA-TMP-SMX", "tmp_smx")]
    assert c.severity == "major" and med in c.evidence
    assert {"prefer-other:option", "monitor:blood-glucose", "counsel:hypoglycemia"} <= codes(p, "tmp_smx")
    # Trimethoprim alone inhibits CYP2C8, not CYP2C9: no caution (reviewed), so the alternative is clean.
    assert not [k for k in by_option(p) if k[1] == "trimethoprim"]


def test_repaglinide_is_a_caution_on_both_trimethoprim_products() -> None:
    c = by_option(with_meds(["repaglinide 1 mg TID"], ["Macrobid"]))
    assert c[("CA-SULFONYLUREA-TMP-SMX", "tmp_smx")].severity == "major"
    assert c[("CA-REPAGLINIDE-TRIMETHOPRIM", "trimethoprim")].severity == "moderate"
    assert "monitor:blood-glucose" in c[("CA-REPAGLINIDE-TRIMETHOPRIM", "trimethoprim")].actions


def test_cautions_are_computed_for_every_allowed_option_and_the_plan_reads_its_own() -> None:
    p = with_meds(["glyburide 5 mg BID"])
    r = result(p)
    assert assess(p, mode="deterministic").recommendation.agent == "nitrofurantoin"
    assert [(c.rule_id, c.option) for c in r.cautions] == [("CA-SULFONYLUREA-TMP-SMX", "tmp_smx")]
    assert "monitor:blood-glucose" not in codes(p, "nitrofurantoin") and "monitor:blood-glucose" in codes(p, "tmp_smx")
    # An excluded option carries none: phenytoin excludes TMP-SMX, so no TMP-SMX caution is stated for it.
    assert not [c for c in result(with_meds(["phenytoin 100 mg TID", "glyburide 5 mg"])).cautions if c.option == "tmp_smx"]


# --- digoxin and phenytoin ----------------------------------------------------------------------------
def test_digoxin_is_a_caution_on_trimethoprim_and_tmp_smx_only() -> None:
    # Trimethoprim competes with digoxin for renal tubular secretion.
    c = by_option(with_meds(["Toloxin 0.125 mg daily"]))
    assert {o for r, o in c if r == "CA-DIGOXIN-TRIMETHOPRIM"} == {"tmp_smx", "trimethoprim"}
    assert {"notify:digoxin-prescriber", "monitor:digoxin"} <= set(c[("CA-DIGOXIN-TRIMETHOPRIM", "tmp_smx")].actions)
    assert not [k for k in c if k[1] in ("nitrofurantoin", "fosfomycin")]


def test_phenytoin_excludes_tmp_smx_and_makes_trimethoprim_a_major_caution() -> None:
    p = with_meds(["Dilantin 300 mg HS"], ["Macrobid"])
    r = result(p)
    assert not r.option("tmp_smx").allowed and r.option("trimethoprim").allowed
    assert assess(p, mode="deterministic").recommendation.agent == "trimethoprim"
    c = by_option(p)[("CA-PHENYTOIN-TRIMETHOPRIM", "trimethoprim")]
    assert c.severity == "major" and "30%" in get_spec(UTI).rules["CA-PHENYTOIN-TRIMETHOPRIM"].text
    assert {"prefer-other:option", "notify:anticonvulsant-prescriber", "monitor:phenytoin"} <= codes(p, "trimethoprim")
    assert "prefer-other:option" not in codes(p, "fosfomycin")  # the allowed option the pharmacist can turn to


# --- antacids, metoclopramide, probenecid --------------------------------------------------------------
@pytest.mark.parametrize("med", ["Maalox 30 mL PRN", "magnesium trisilicate PRN", "milk of magnesia 30 mL", "Diovol",
                                 "aluminum hydroxide 600 mg", "magnesium oxide 400 mg"])
def test_a_magnesium_or_aluminium_antacid_means_separating_nitrofurantoin(med) -> None:
    p = with_meds([med])
    c = by_option(p)[("CA-NITROFURANTOIN-ANTACID", "nitrofurantoin")]
    assert "2 hours" in c.action and codes(p, "nitrofurantoin") >= {"separate:antacid"}


@pytest.mark.parametrize("med", ["Tums 500 mg", "ferrous sulfate 300 mg", "zinc 50 mg", "calcium carbonate 500 mg"])
def test_calcium_iron_and_zinc_are_not_documented_with_nitrofurantoin(med) -> None:
    assert not [c for c in result(with_meds([med])).cautions if c.option == "nitrofurantoin"]


def test_metoclopramide_is_major_with_fosfomycin_and_minor_with_nitrofurantoin() -> None:
    c = by_option(with_meds(["metoclopramide 10 mg TID"]))
    assert c[("CA-FOSFOMYCIN-METOCLOPRAMIDE", "fosfomycin")].severity == "major"
    assert c[("CA-NITROFURANTOIN-METOCLOPRAMIDE", "nitrofurantoin")].severity == "minor"
    assert not [k for k in c if k[1] in ("tmp_smx", "trimethoprim")]


def test_metoclopramide_lowers_fosfomycin_and_with_no_other_option_the_review_says_what_to_do() -> None:
    p = with_meds(["metoclopramide 10 mg TID", "lisinopril 10 mg daily"], ["Macrobid"])
    a = assess(p, mode="deterministic")
    assert a.recommendation.agent == "fosfomycin"  # lisinopril excludes TMP-SMX and trimethoprim
    c = {x.rule_id: x for x in a.protocol.cautions}["CA-FOSFOMYCIN-METOCLOPRAMIDE"]
    assert c.option == "fosfomycin" and c.action.startswith("Choose another allowed option; if none remains, give fosfomycin")
    assert {"prefer-other:option", "follow-up:reassess"} <= codes(p, "fosfomycin")


def test_probenecid_is_moderate_on_nitrofurantoin_and_major_on_fosfomycin() -> None:
    a = assess(with_meds(["probenecid 500 mg BID"]), mode="deterministic")
    assert a.recommendation.agent == "nitrofurantoin" and a.protocol.option("nitrofurantoin").allowed
    c = {(x.rule_id, x.option): x for x in a.protocol.cautions}
    assert set(c) == {("CA-PROBENECID", "nitrofurantoin"), ("CA-FOSFOMYCIN-PROBENECID", "fosfomycin")}
    assert c[("CA-PROBENECID", "nitrofurantoin")].severity == "moderate"  # the monograph describes it, never says avoid
    assert c[("CA-FOSFOMYCIN-PROBENECID", "fosfomycin")].severity == "major"  # Monurol: not to be prescribed together


# --- QT ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("med", ["citalopram 20 mg", "escitalopram 10 mg", "amiodarone 200 mg", "methadone 60 mg", "sotalol 80 mg BID"])
def test_a_qt_prolonging_drug_is_a_caution_on_tmp_smx_alone(med) -> None:
    c = by_option(with_meds([med], ["Macrobid"]))
    assert c[("CA-QT-TMP-SMX", "tmp_smx")].severity == "minor" and "counsel:qt-symptoms" in c[("CA-QT-TMP-SMX", "tmp_smx")].actions
    assert not [k for k in c if k[0] == "CA-QT-TMP-SMX" and k[1] != "tmp_smx"]


# --- NSAIDs, kidney function, duplicates (the patient as a whole) ------------------------------------------
def test_the_quick_start_sample_raises_the_nsaid_with_ace_inhibitor_and_potassium_sparing_diuretic() -> None:
    c = cautions(load_sample("raas-nitrofurantoin-allergy"))  # lisinopril + spironolactone + ibuprofen
    assert set(c) == {"CA-NSAID-RAAS-DIURETIC"} and c["CA-NSAID-RAAS-DIURETIC"].severity == "major"
    assert "acetaminophen" in c["CA-NSAID-RAAS-DIURETIC"].action and "hold:nsaid" in c["CA-NSAID-RAAS-DIURETIC"].actions
    assert all(name in c["CA-NSAID-RAAS-DIURETIC"].evidence for name in ("ibuprofen", "lisinopril", "spironolactone"))


def test_ramipril_furosemide_naproxen_is_the_triple_combination() -> None:
    assert set(cautions(with_meds(["ramipril 10 mg", "furosemide 40 mg", "naproxen 500 mg BID"]))) == {"CA-NSAID-RAAS-DIURETIC"}


def test_the_pairs() -> None:
    assert set(cautions(with_meds(["losartan 50 mg", "naproxen 250 mg"]))) == {"CA-NSAID-RAAS"}
    assert set(cautions(with_meds(["furosemide 20 mg", "diclofenac 50 mg"]))) == {"CA-NSAID-DIURETIC"}
    assert cautions(with_meds(["lisinopril 10 mg", "furosemide 20 mg"])) == {}  # no NSAID: nothing to say


def test_an_nsaid_with_reduced_kidney_function() -> None:
    c = cautions(with_meds(["ibuprofen 400 mg PRN"], egfr_mL_min=45.0))
    assert set(c) == {"CA-NSAID-RENAL"} and "eGFR 45" in c["CA-NSAID-RENAL"].evidence
    assert {"hold:nsaid", "notify:nsaid-prescriber"} <= set(c["CA-NSAID-RENAL"].actions)
    assert cautions(with_meds(["ibuprofen 400 mg PRN"], egfr_mL_min=75.0)) == {}


def test_zestoretic_plus_lisinopril_is_the_same_drug_twice() -> None:
    c = cautions(with_meds(["Zestoretic 20/12.5 mg daily", "lisinopril 10 mg daily"]))
    assert set(c) == {"CA-DUPLICATE-INGREDIENT"} and c["CA-DUPLICATE-INGREDIENT"].evidence.startswith("lisinopril in each of")


def test_two_ace_inhibitors_and_two_sulfonylureas_are_class_duplicates() -> None:
    assert set(cautions(with_meds(["ramipril 5 mg", "perindopril 4 mg"]))) == {"CA-DUPLICATE-CLASS"}
    assert "CA-DUPLICATE-CLASS" in cautions(with_meds(["glyburide 5 mg", "gliclazide 80 mg"]))


def test_a_referral_carries_the_patient_level_cautions_only_and_no_treatment_carries_none() -> None:
    male = result(with_meds(["lisinopril 10 mg", "hydrochlorothiazide 25 mg", "ibuprofen 400 mg", "glyburide 5 mg"], sex="male"))
    assert male.decision == "refer_complicated"
    assert [(c.rule_id, c.option) for c in male.cautions] == [("CA-NSAID-RAAS-DIURETIC", None)]
    assert "hold:nsaid" in action_codes(plan_actions(male, None))
    p = with_meds(["ibuprofen 400 mg", "losartan 50 mg"])
    p["symptoms"] = {k: False for k in p["symptoms"]}
    assert result(p).decision == "no_antibiotics" and result(p).cautions == []


# --- contradictory inputs: flagged, never a change to the decision ----------------------------------------
def flags(p) -> set[str]:
    return {f.code for f in result(p).flags}


def test_normal_renal_function_with_egfr_40_is_flagged_as_contradictory() -> None:
    a = assess(with_meds([], egfr_mL_min=40.0), mode="deterministic")
    assert any(f.code == "RENAL-INPUT-CONFLICT" and "eGFR 40" in f.message for f in a.protocol.flags)


def test_impaired_renal_function_with_egfr_85_is_flagged_and_still_refers() -> None:
    r = result(with_meds([], renal_function_summary="impaired", egfr_mL_min=85.0))
    assert r.decision == "refer_complicated" and "RENAL-INPUT-CONFLICT" in {f.code for f in r.flags}
    assert "RENAL-INPUT-CONFLICT" not in flags(with_meds([], renal_function_summary="impaired", egfr_mL_min=45.0))


def test_a_drug_taken_and_listed_as_an_allergy_is_flagged() -> None:
    assert "MED-ALLERGY-CONFLICT" in flags(with_meds(["lisinopril 10 mg daily"], ["lisinopril (cough)"]))
    assert "MED-ALLERGY-CONFLICT" in flags(with_meds(["amoxicillin 500 mg TID"], ["penicillin (rash)"]))  # a class allergy
    assert "MED-ALLERGY-CONFLICT" not in flags(with_meds(["lisinopril 10 mg daily"], ["Macrobid"]))


def test_the_ace_inhibitor_answer_without_a_drug_is_flagged() -> None:
    p = with_meds([])
    p["history"]["ACEI_ARB_use"] = True
    r = result(p)
    assert "ACEI-ARB-FLAG-UNMATCHED" in {f.code for f in r.flags} and not r.option("tmp_smx").allowed
    p["history"]["meds"] = ["ramipril 5 mg"]
    assert "ACEI-ARB-FLAG-UNMATCHED" not in flags(p)


def test_a_recent_antibiotic_still_in_the_medication_list_is_flagged() -> None:
    p = with_meds(["Macrobid 100 mg BID"])
    p["history"].update(antibiotics_last_90d=True, recent_antibiotics=["nitrofurantoin"])
    assert {"RECENT-ANTIBIOTIC-ALSO-CURRENT", "CURRENT-ANTIBIOTIC"} <= flags(p)


def test_pregnancy_at_62_and_gross_without_any_hematuria_are_flagged() -> None:
    assert "PREGNANCY-AGE-CONFLICT" in flags(with_meds([], age=62, pregnancy_status="pregnant"))
    assert "PREGNANCY-AGE-CONFLICT" not in flags(with_meds([], age=30, pregnancy_status="pregnant"))
    p = with_meds([])
    p["symptoms"]["gross_hematuria"] = True
    assert "HEMATURIA-INPUT-CONFLICT" in flags(p)


# --- cautions never change the decision -------------------------------------------------------------------
# Drugs that trigger cautions and no exclusion, and are recognised (so they leave nothing unverified).
CAUTION_ONLY = ["ibuprofen 400 mg", "naproxen 250 mg", "diclofenac 50 mg", "celecoxib 200 mg", "glyburide 5 mg BID",
                "Diamicron MR 60 mg", "repaglinide 1 mg TID", "Toloxin 0.125 mg", "Maalox 30 mL PRN", "magnesium trisilicate",
                "metoclopramide 10 mg TID", "probenecid 500 mg BID", "enoxaparin 40 mg SC", "citalopram 20 mg",
                "ASA 81 mg", "Plavix 75 mg", "Eliquis 5 mg BID"]
SAMPLES = ["uncomplicated", "warfarin", "g6pd", "thiazide-older-adult", "entresto", "raas-nitrofurantoin-allergy", "methotrexate", "male"]


def _outcome(p):
    r = result(p)
    return (r.decision, r.recommendation, [(o.option, o.allowed, o.exclusions, o.unverified_by) for o in r.options], r.blocking_checks)


@settings(max_examples=150, deadline=None)
@given(added=st.lists(st.sampled_from(CAUTION_ONLY), min_size=1, max_size=4, unique=True), sample=st.sampled_from(SAMPLES),
       allergy=st.sampled_from([None, "Macrobid"]))
def test_a_caution_never_changes_the_decision_or_which_options_are_allowed(added, sample, allergy) -> None:
    base = copy.deepcopy(load_sample(sample))
    if allergy:
        base["history"]["allergies"] = [*base["history"]["allergies"], allergy]
    more = copy.deepcopy(base)
    more["history"]["meds"] = [*more["history"]["meds"], *added]
    assert _outcome(more) == _outcome(base)
    r = result(more)
    assert all(c.rule_id.startswith("CA-") and c.action and c.actions and not check_codes(c.actions) for c in r.cautions)
    allowed = set(r.allowed_options)
    assert all(c.option is None or c.option in allowed for c in r.cautions)  # never about an excluded option
    if r.decision == "recommend_treatment" and any({"acei", "arb", "arni", "thiazide"} & set(m.classes) for m in r.medications) \
            and any("nsaid" in m.classes for m in r.medications):
        assert {c.rule_id for c in r.cautions} & {"CA-NSAID-RAAS-DIURETIC", "CA-NSAID-RAAS", "CA-NSAID-DIURETIC"}


def test_the_review_is_deterministic() -> None:
    p = with_meds(["glyburide 5 mg", "digoxin 0.125 mg", "Maalox", "ibuprofen 400 mg", "ASA 81 mg", "citalopram 20 mg"], ["Macrobid"])
    assert result(p) == result(copy.deepcopy(p))
