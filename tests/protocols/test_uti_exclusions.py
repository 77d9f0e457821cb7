"""Every exclusion in the protocol, matched from free text through the formulary."""

from __future__ import annotations

import pytest
from patients import make_patient

from clinreason import Decision, assess


def agents_for(**changes):
    a = assess(make_patient(**changes), mode="deterministic")
    return a, {ev.option: [x.rule_id for x in ev.exclusions] for ev in a.protocol.options}


def test_utiplayground_linda_park_shape_gets_fosfomycin_not_tmp_smx():
    # 52-year-old on lisinopril, spironolactone and ibuprofen, allergic to
    # nitrofurantoin: TMP-SMX and trimethoprim would risk hyperkalemia.
    a, ex = agents_for(age=52, history={"allergies": ["nitrofurantoin"], "meds": ["lisinopril", "spironolactone", "ibuprofen"]})
    assert a.recommendation.agent == "fosfomycin"
    assert ex["tmp_smx"] == ["EX-HYPERKALEMIA"] and ex["trimethoprim"] == ["EX-HYPERKALEMIA"]
    evidence = a.protocol.option("tmp_smx").exclusions[0].evidence
    assert "lisinopril" in evidence and "spironolactone" in evidence and "ibuprofen" not in evidence


@pytest.mark.parametrize(
    "allergy",
    ["nitrofurantoin", "Macrobid (hives)", "MACRODANTIN - rash", "nitrofurantion", "Furadantin"],
)
def test_nitrofurantoin_allergy_spellings(allergy):
    a, ex = agents_for(history={"allergies": [allergy]})
    assert ex["nitrofurantoin"] == ["EX-ALLERGY"]
    assert ex["tmp_smx"] == [] and a.recommendation.agent == "tmp_smx"


@pytest.mark.parametrize("allergy", ["sulfa", "Sulfa drugs", "sulphonamides (anaphylaxis)", "sulfamethoxazole"])
def test_sulfa_allergy_excludes_tmp_smx_only(allergy):
    _, ex = agents_for(history={"allergies": [allergy, "Macrobid"]})
    assert ex["tmp_smx"] == ["EX-ALLERGY"]
    assert ex["trimethoprim"] == []


@pytest.mark.parametrize("allergy", ["Bactrim", "Septra DS", "co-trimoxazole", "TMP/SMX", "trimethoprim-sulfamethoxazole"])
def test_combination_allergy_excludes_tmp_smx_and_trimethoprim(allergy):
    a, ex = agents_for(history={"allergies": [allergy]})
    assert ex["tmp_smx"] == ["EX-ALLERGY"] and ex["trimethoprim"] == ["EX-ALLERGY"]
    assert a.recommendation.agent == "nitrofurantoin"


def test_fosfomycin_allergy_by_brand():
    _, ex = agents_for(history={"allergies": ["Monurol"]})
    assert ex["fosfomycin"] == ["EX-ALLERGY"]


def test_unrelated_allergy_excludes_nothing():
    # penicillin is a recognised class and latex a recognised non-drug allergen: nothing to check by hand.
    a, ex = agents_for(history={"allergies": ["penicillin (hives)", "latex"]})
    assert all(v == [] for v in ex.values())
    assert not [f for f in a.protocol.flags if f.code == "UNRECOGNIZED-ENTRY"]
    assert a.protocol.unverified_entries == [] and a.recommendation.agent == "nitrofurantoin"


def test_unrecognised_allergy_is_flagged_and_blocks():
    a, ex = agents_for(history={"allergies": ["penicillin (hives)", "Frobnicol (rash)"]})
    flagged = [f.message for f in a.protocol.flags if f.code == "UNRECOGNIZED-ENTRY"]
    assert any("Frobnicol" in m for m in flagged) and not any("penicillin" in m for m in flagged)
    assert [c.field for c in a.protocol.blocking_checks] == ["history.allergies[1]"]


def test_leucovorin_is_not_read_as_folic_acid_and_is_flagged_for_a_check():
    # Folinic acid is a different drug from folic acid and usually means methotrexate therapy.
    a, _ = agents_for(history={"meds": ["leucovorin 5 mg weekly", "folic acid 1 mg daily"]})
    flagged = [f.message for f in a.protocol.flags if f.code == "UNRECOGNIZED-ENTRY"]
    assert any("leucovorin" in m for m in flagged) and not any("folic acid" in m for m in flagged)


def test_recent_nitrofurantoin_excludes_it():
    a, ex = agents_for(history={"antibiotics_last_90d": True, "recent_antibiotics": ["Macrobid for a UTI in June"]})
    assert ex["nitrofurantoin"] == ["EX-RECENT-USE"]
    assert a.recommendation.agent == "tmp_smx"


def test_recent_tmp_smx_also_excludes_trimethoprim():
    _, ex = agents_for(history={"antibiotics_last_90d": True, "recent_antibiotics": ["Septra DS"]})
    assert ex["tmp_smx"] == ["EX-RECENT-USE"] and ex["trimethoprim"] == ["EX-RECENT-USE"]


def test_recent_trimethoprim_alone_also_excludes_tmp_smx():
    # Amended 2026-12: the shared trimethoprim component means exposure to either excludes both.
    a, ex = agents_for(history={"antibiotics_last_90d": True, "recent_antibiotics": ["trimethoprim"]})
    assert ex["trimethoprim"] == ["EX-RECENT-USE"] and ex["tmp_smx"] == ["EX-RECENT-USE"]
    assert a.recommendation.agent == "nitrofurantoin"


def test_bare_recent_antibiotic_flag_excludes_nothing_but_is_flagged():
    a, ex = agents_for(history={"antibiotics_last_90d": True})
    assert all(v == [] for v in ex.values())
    assert a.recommendation.agent == "nitrofurantoin"
    assert "RECENT-ANTIBIOTIC-UNNAMED" in [f.code for f in a.protocol.flags]


def test_nitrofurantoin_renal_threshold_with_impaired_summary_and_no_number():
    # Referred for renal dysfunction anyway, but the agent table must still
    # say nitrofurantoin is unsafe without an eGFR showing >= 30.
    _, ex = agents_for(renal_function_summary="impaired")
    assert ex["nitrofurantoin"] == ["EX-RENAL"]


def test_nitrofurantoin_excluded_below_30_even_when_summary_says_normal():
    a, ex = agents_for(egfr_mL_min=24)
    assert ex["nitrofurantoin"] == ["EX-RENAL"]
    assert a.decision == Decision.refer_complicated


def test_g6pd_excludes_nitrofurantoin_and_tmp_smx():
    a, ex = agents_for(history={"g6pd_deficiency": True})
    assert ex["nitrofurantoin"] == ["EX-G6PD"] and ex["tmp_smx"] == ["EX-G6PD"]
    assert a.recommendation.agent == "trimethoprim"


@pytest.mark.parametrize(
    "med",
    ["Lisinopril 10 mg daily", "Zestril 20mg", "ramipril", "losartan 50", "Entresto 49/51 mg BID",
     "spironolactone 25 mg", "Aldactone", "eplerenone", "amiloride", "triamterene", "Hyzaar", "Coversyl Plus"],
)
def test_hyperkalemia_risk_meds_exclude_tmp_smx_and_trimethoprim(med):
    a, ex = agents_for(history={"meds": [med], "allergies": ["nitrofurantoin"]})
    assert "EX-HYPERKALEMIA" in ex["tmp_smx"] and "EX-HYPERKALEMIA" in ex["trimethoprim"]
    assert a.recommendation.agent == "fosfomycin"


def test_acei_arb_flag_alone_excludes_tmp_smx_and_trimethoprim():
    _, ex = agents_for(history={"ACEI_ARB_use": True})
    assert ex["tmp_smx"] == ["EX-HYPERKALEMIA"] and ex["trimethoprim"] == ["EX-HYPERKALEMIA"]


@pytest.mark.parametrize("med", ["warfarin 5 mg", "Coumadin 2.5mg"])
def test_warfarin_excludes_tmp_smx_only(med):
    a, ex = agents_for(history={"meds": [med], "allergies": ["nitrofurantoin"]})
    assert ex["tmp_smx"] == ["EX-WARFARIN"] and ex["trimethoprim"] == []
    assert a.recommendation.agent == "trimethoprim"


@pytest.mark.parametrize("med", ["methotrexate 15 mg weekly", "Metoject 20 mg SC weekly"])
def test_methotrexate_excludes_tmp_smx_and_trimethoprim(med):
    _, ex = agents_for(history={"meds": [med]})
    assert ex["tmp_smx"] == ["EX-METHOTREXATE"] and ex["trimethoprim"] == ["EX-METHOTREXATE"]


def test_dofetilide_excludes_tmp_smx_and_trimethoprim():
    _, ex = agents_for(history={"meds": ["Tikosyn 250 mcg BID"]})
    assert ex["tmp_smx"] == ["EX-DOFETILIDE"] and ex["trimethoprim"] == ["EX-DOFETILIDE"]


def test_thiazide_excludes_tmp_smx_from_age_65_only():
    _, older = agents_for(age=65, history={"meds": ["hydrochlorothiazide 25 mg"]})
    _, younger = agents_for(age=64, history={"meds": ["hydrochlorothiazide 25 mg"]})
    assert older["tmp_smx"] == ["EX-THIAZIDE-65"] and older["trimethoprim"] == []
    assert younger["tmp_smx"] == []


def test_fosfomycin_excluded_under_18():
    _, ex16 = agents_for(age=17)
    _, ex18 = agents_for(age=18)
    assert ex16["fosfomycin"] == ["EX-AGE"] and ex18["fosfomycin"] == []


def test_combination_product_brings_both_ingredients():
    # Zestoretic = lisinopril + hydrochlorothiazide: hyperkalemia and, at 70, thrombocytopenia.
    _, ex = agents_for(age=70, egfr_mL_min=60, history={"meds": ["Zestoretic 20/12.5 mg"]})
    assert ex["tmp_smx"] == ["EX-HYPERKALEMIA", "EX-THIAZIDE-65"]


def test_misspelt_interacting_drug_still_excludes_and_is_flagged():
    a, ex = agents_for(history={"meds": ["spironolacton 25mg"]})
    assert ex["tmp_smx"] == ["EX-HYPERKALEMIA"]
    assert "SPELLING-ASSUMED" in [f.code for f in a.protocol.flags]


def test_no_drug_found_inside_an_unrelated_word():
    # "tmp" must not be read out of "temporary"; "mtx" not out of words containing it.
    a, ex = agents_for(history={"meds": ["temporary compression stockings"]})
    assert all(v == [] for v in ex.values())


def test_exclusions_name_their_sources():
    a, _ = agents_for(history={"meds": ["warfarin"]})
    ex = a.protocol.option("tmp_smx").exclusions[0]
    assert any("Beers" in s for s in ex.sources)
    assert "warfarin" in ex.evidence
