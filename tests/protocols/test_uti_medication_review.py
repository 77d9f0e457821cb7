"""The cystitis protocol's medication review (issue 17, part 1): findings that never change the
decision, each with the action the prescriber or patient takes."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from clinreason import assess
from clinreason.samples import load_sample


def with_meds(meds, **extra) -> dict:
    p = copy.deepcopy(load_sample("uncomplicated"))
    p["history"]["meds"] = list(meds)
    p.update(extra)
    return p


def cautions(p) -> dict[str, object]:
    return {c.rule_id: c for c in assess(p, mode="deterministic").protocol.cautions}


def test_the_warfarin_patient_on_trimethoprim_gets_an_inr_check_and_a_word_to_the_anticoagulation_prescriber() -> None:
    a = assess(load_sample("warfarin"), mode="deterministic")
    assert a.recommendation.agent == "trimethoprim"
    inr = {c.rule_id: c for c in a.protocol.cautions}["CA-VKA-INR"]
    assert inr.option == "trimethoprim" and "3 to 5 days" in inr.action and "anticoagulant" in inr.action
    assert "Coumadin" in inr.evidence


def test_the_quick_start_sample_raises_the_nsaid_with_ace_inhibitor_and_potassium_sparing_diuretic() -> None:
    c = cautions(load_sample("raas-nitrofurantoin-allergy"))  # lisinopril + spironolactone + ibuprofen
    assert set(c) == {"CA-NSAID-RAAS-DIURETIC"} and c["CA-NSAID-RAAS-DIURETIC"].severity == "major"
    assert "acetaminophen" in c["CA-NSAID-RAAS-DIURETIC"].action
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
    assert cautions(with_meds(["ibuprofen 400 mg PRN"], egfr_mL_min=75.0)) == {}


def test_zestoretic_plus_lisinopril_is_the_same_drug_twice() -> None:
    c = cautions(with_meds(["Zestoretic 20/12.5 mg daily", "lisinopril 10 mg daily"]))
    assert set(c) == {"CA-DUPLICATE-INGREDIENT"} and c["CA-DUPLICATE-INGREDIENT"].evidence.startswith("lisinopril in each of")


def test_two_ace_inhibitors_are_a_class_duplicate() -> None:
    assert set(cautions(with_meds(["ramipril 5 mg", "perindopril 4 mg"]))) == {"CA-DUPLICATE-CLASS"}


def test_normal_renal_function_with_egfr_40_is_flagged_as_contradictory() -> None:
    a = assess(with_meds([], egfr_mL_min=40.0), mode="deterministic")
    assert any(f.code == "RENAL-INPUT-CONFLICT" and "eGFR 40" in f.message for f in a.protocol.flags)


# NSAIDs act on no exclusion of this protocol: adding them may add findings, never change the plan.
NSAIDS = st.lists(st.sampled_from(["ibuprofen 400 mg", "naproxen 250 mg", "diclofenac 50 mg", "celecoxib 200 mg"]),
                  min_size=1, max_size=3)


@settings(max_examples=100, deadline=None)
@given(nsaids=NSAIDS, sample=st.sampled_from(["uncomplicated", "warfarin", "g6pd", "thiazide-older-adult", "entresto",
                                              "raas-nitrofurantoin-allergy", "methotrexate", "male"]))
def test_a_caution_never_changes_the_decision(nsaids, sample) -> None:
    base = load_sample(sample)
    more = {**base, "history": {**base["history"], "meds": [*base["history"]["meds"], *nsaids]}}
    a, b = assess(base, mode="deterministic"), assess(more, mode="deterministic")
    assert (b.decision, b.recommendation, [o.exclusions for o in b.protocol.options]) == \
        (a.decision, a.recommendation, [o.exclusions for o in a.protocol.options])
    assert all(c.rule_id.startswith("CA-") and c.action for c in b.protocol.cautions)
    if b.decision == "recommend_treatment" and any({"acei", "arb", "arni", "thiazide"} & set(m.classes) for m in b.protocol.medications):
        assert {c.rule_id for c in b.protocol.cautions} & {"CA-NSAID-RAAS-DIURETIC", "CA-NSAID-RAAS", "CA-NSAID-DIURETIC"}


def test_metoclopramide_lowers_fosfomycin_and_the_review_says_so() -> None:
    p = with_meds(["metoclopramide 10 mg TID", "lisinopril 10 mg daily"])
    p["history"]["allergies"] = ["Macrobid"]
    a = assess(p, mode="deterministic")
    assert a.recommendation.agent == "fosfomycin"  # lisinopril excludes TMP-SMX and trimethoprim
    c = {x.rule_id: x for x in a.protocol.cautions}["CA-FOSFOMYCIN-METOCLOPRAMIDE"]
    assert c.option == "fosfomycin" and "Prefer another allowed option" in c.action


def test_probenecid_is_a_caution_on_nitrofurantoin_not_an_exclusion() -> None:
    a = assess(with_meds(["probenecid 500 mg BID"]), mode="deterministic")
    assert a.recommendation.agent == "nitrofurantoin" and a.protocol.option("nitrofurantoin").allowed
    assert {x.rule_id for x in a.protocol.cautions} == {"CA-PROBENECID"}
