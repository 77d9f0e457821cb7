"""Each step of the protocol's order of evaluation, with a clinical case."""

from __future__ import annotations

import pytest
from patients import make_patient

from clinreason import Decision, assess


def run(**changes):
    return assess(make_patient(**changes), mode="deterministic")


def test_healthy_woman_with_dysuria_gets_nitrofurantoin_5_days():
    a = run()
    assert a.decision == Decision.recommend_treatment
    r = a.recommendation
    assert (r.agent, r.drug, r.dose, r.frequency, r.duration) == (
        "nitrofurantoin", "nitrofurantoin monohydrate/macrocrystals", "100 mg", "BID", "5 days")
    assert a.protocol.rule_ids == ["SX-DYSURIA", "TX-FIRST-SAFE-AGENT"]
    assert [x.agent for x in a.protocol.alternatives] == ["tmp_smx", "trimethoprim", "fosfomycin"]


def test_treatment_carries_follow_up_and_signoff():
    fu = run().protocol.follow_up
    assert fu.reassess == "48-72 hours"
    assert {"fever", "flank pain", "no improvement by 48-72 hours"} <= set(fu.escalate_if)
    assert fu.notify_primary_prescriber and fu.signoff_required


@pytest.mark.parametrize(
    ("flag", "rule"),
    [("fever", "RF-FEVER"), ("rigors", "RF-RIGORS"), ("flank_pain", "RF-FLANK-PAIN"),
     ("back_pain", "RF-BACK-PAIN"), ("nausea_vomiting", "RF-NAUSEA-VOMITING"), ("systemic", "RF-SYSTEMIC")],
)
def test_each_red_flag_refers_urgently(flag, rule):
    a = run(red_flags={flag: True})
    assert a.decision == Decision.refer_urgent
    assert a.protocol.rule_ids == [rule]
    assert a.recommendation is None and a.protocol.follow_up is None


def test_red_flag_wins_over_every_later_step():
    a = run(sex="male", pregnancy_status="unknown", red_flags={"flank_pain": True},
            recurrence={"recurrent_6m": True}, history={"catheter": True})
    assert a.decision == Decision.refer_urgent
    assert a.protocol.rule_ids == ["RF-FLANK-PAIN"]


def test_asymptomatic_bacteriuria_not_pregnant_gets_no_antibiotics():
    a = run(symptoms={"dysuria": False}, asymptomatic_bacteriuria=True, age=82)
    assert a.decision == Decision.no_antibiotics
    assert a.protocol.rule_ids == ["ASB-NO-TREATMENT"]


def test_asymptomatic_bacteriuria_in_pregnancy_is_referred():
    a = run(symptoms={"dysuria": False}, asymptomatic_bacteriuria=True, pregnancy_status="pregnant")
    assert a.decision == Decision.refer_complicated
    assert a.protocol.rule_ids == ["ASB-PREGNANT"]


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"sex": "male", "pregnancy_status": "not_applicable"}, "CF-MALE"),
        ({"sex": "unknown", "pregnancy_status": "unknown"}, "CF-SEX-UNCONFIRMED"),
        ({"pregnancy_status": "pregnant"}, "CF-PREGNANT"),
        ({"age": 15}, "CF-AGE-BELOW-MIN"),
        ({"history": {"immunocompromised": True}}, "CF-IMMUNOCOMPROMISED"),
        ({"history": {"catheter": True}}, "CF-CATHETER"),
        ({"history": {"neurogenic_bladder": True}}, "CF-NEUROGENIC-BLADDER"),
        ({"history": {"stones": True}}, "CF-STONES"),
        ({"renal_function_summary": "impaired"}, "CF-RENAL"),
        ({"renal_function_summary": "failure"}, "CF-RENAL"),
        ({"egfr_mL_min": 29.5}, "CF-RENAL"),
        ({"crcl_mL_min": 22}, "CF-RENAL"),
        ({"symptoms": {"confusion": True}}, "CF-CONFUSION"),
        ({"symptoms": {"delirium": True}}, "CF-DELIRIUM"),
        ({"symptoms": {"gross_hematuria": True}}, "CF-GROSS-HEMATURIA"),
        ({"symptoms": {"vaginal_discharge": True}}, "CF-VAGINAL-SYMPTOMS"),
        ({"symptoms": {"vaginal_itch": True}}, "CF-VAGINAL-SYMPTOMS"),
    ],
)
def test_each_complicating_factor_refers(changes, rule):
    a = run(**changes)
    assert a.decision == Decision.refer_complicated
    assert rule in a.protocol.rule_ids
    assert a.recommendation is None


def test_age_16_is_eligible_but_15_is_not():
    assert run(age=16).decision == Decision.recommend_treatment
    assert run(age=15).decision == Decision.refer_complicated


def test_egfr_exactly_30_is_not_renal_dysfunction():
    a = run(egfr_mL_min=30)
    assert a.decision == Decision.recommend_treatment
    assert a.recommendation.agent == "nitrofurantoin"


def test_several_complicating_factors_are_all_reported():
    a = run(sex="male", pregnancy_status="unknown", history={"catheter": True, "stones": True})
    assert a.protocol.rule_ids == ["CF-MALE", "CF-CATHETER", "CF-STONES"]


@pytest.mark.parametrize(
    ("symptoms", "rule"),
    [
        ({"dysuria": True}, "SX-DYSURIA"),
        ({"dysuria": False, "urgency": True, "frequency": True}, "SX-TWO-OR-MORE"),
        ({"dysuria": False, "suprapubic_pain": True, "hematuria": True}, "SX-TWO-OR-MORE"),
    ],
)
def test_symptom_criteria_met(symptoms, rule):
    a = run(symptoms=symptoms)
    assert a.decision == Decision.recommend_treatment
    assert a.protocol.rule_ids[0] == rule


@pytest.mark.parametrize("single", ["urgency", "frequency", "suprapubic_pain", "hematuria"])
def test_one_secondary_symptom_without_dysuria_is_not_enough(single):
    a = run(symptoms={"dysuria": False, single: True})
    assert a.decision == Decision.no_antibiotics
    assert a.protocol.rule_ids == ["SX-CRITERIA-NOT-MET"]


def test_no_symptoms_and_no_bacteriuria_gets_no_antibiotics():
    assert run(symptoms={"dysuria": False}).decision == Decision.no_antibiotics


@pytest.mark.parametrize(
    ("field", "rule"),
    [("relapse_within_4w", "RC-RELAPSE-4W"), ("recurrent_6m", "RC-RECURRENT-6M"), ("recurrent_12m", "RC-RECURRENT-12M")],
)
def test_recurrence_refers(field, rule):
    a = run(recurrence={field: True})
    assert a.decision == Decision.refer_recurrence
    assert rule in a.protocol.rule_ids


def test_recurrence_only_counts_once_criteria_are_met():
    a = run(symptoms={"dysuria": False}, recurrence={"recurrent_6m": True})
    assert a.decision == Decision.no_antibiotics


def test_every_agent_excluded_refers_with_each_reason():
    a = run(age=17, history={"allergies": ["Macrobid"], "meds": ["Ramipril 5 mg daily"]})
    assert a.decision == Decision.refer_no_safe_option
    assert a.protocol.rule_ids[-1] == "TX-NO-SAFE-OPTION"
    reasons = {ev.option: [x.rule_id for x in ev.exclusions] for ev in a.protocol.options}
    assert reasons == {
        "nitrofurantoin": ["EX-ALLERGY"],
        "tmp_smx": ["EX-HYPERKALEMIA"],
        "trimethoprim": ["EX-HYPERKALEMIA"],
        "fosfomycin": ["EX-AGE"],
    }


def test_output_names_protocol_and_profile_versions():
    p = run().protocol
    assert (p.protocol_id, p.profile_id) == ("uti-cystitis", "CA-ON")
    assert p.protocol_version and p.profile_version


@pytest.mark.parametrize("med", ["tacrolimus 2 mg BID", "Prograf", "CellCept 500 mg", "Humira pen"])
def test_immunosuppressant_in_med_list_means_immunocompromised(med):
    # The flag was left false, but a transplant or biologic drug makes the
    # infection complicated all the same; the evidence names the drug.
    a = run(history={"meds": [med], "immunocompromised": False})
    assert a.decision == Decision.refer_complicated
    hit = next(r for r in a.protocol.rules_fired if r.rule_id == "CF-IMMUNOCOMPROMISED")
    assert med in hit.detail


@pytest.mark.parametrize("med", ["prednisone 40 mg daily", "Medrol 4 mg", "dexamethasone 4 mg BID"])
def test_systemic_steroid_flags_the_immune_answer_without_deciding_it(med):
    # Dose and duration decide whether a steroid is immunosuppressive, so the
    # answer the pharmacist gave stands; the prescriber is told to confirm it.
    a = run(history={"meds": [med], "immunocompromised": False})
    assert a.decision == Decision.recommend_treatment
    codes = {f.code: f.message for f in a.protocol.flags}
    assert "UNRECOGNIZED-ENTRY" not in codes
    assert "20 mg/day of prednisone" in codes["CORTICOSTEROID-CHECK-IMMUNE"] and med in codes["CORTICOSTEROID-CHECK-IMMUNE"]
    confirmed = run(history={"meds": [med], "immunocompromised": True})
    assert confirmed.decision == Decision.refer_complicated
    assert "CORTICOSTEROID-CHECK-IMMUNE" not in {f.code for f in confirmed.protocol.flags}


def test_low_dose_methotrexate_alone_is_not_read_as_immunocompromise():
    a = run(history={"meds": ["methotrexate 15 mg weekly"]})
    assert a.decision == Decision.recommend_treatment
    assert a.recommendation.agent == "nitrofurantoin"
