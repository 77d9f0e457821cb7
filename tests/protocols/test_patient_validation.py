"""Bad input is rejected with field-level errors; nothing is coerced or dropped."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from patients import make_patient

from clinreason import InvalidPatient, assess


def errors_of(data) -> dict[str, str]:
    with pytest.raises(InvalidPatient) as info:
        assess(data, mode="deterministic")
    assert isinstance(info.value, ValueError)
    return {e.field: e.message for e in info.value.errors}


def test_utiplayground_spellings_are_accepted():
    a = assess(make_patient(egfr_mL_min=25, history={"ACEI_ARB_use": True}), mode="deterministic")
    assert a.decision == "refer_complicated"
    tmp = a.protocol.option("tmp_smx")
    assert [x.rule_id for x in tmp.exclusions] == ["EX-HYPERKALEMIA"]


def test_lowercase_spellings_are_accepted_too():
    p = make_patient(egfr_ml_min=25)
    assert "CF-RENAL" in assess(p, mode="deterministic").protocol.rule_ids


def test_both_spellings_at_once_are_rejected():
    errs = errors_of(make_patient(egfr_mL_min=25, egfr_ml_min=40))
    assert any("egfr_mL_min" in m and "not both" in m for m in errs.values())


def test_unknown_field_is_named():
    errs = errors_of(make_patient(temperature=38.5, history={"smoker": True}))
    assert errs["temperature"].startswith("unknown field")
    assert errs["history.smoker"].startswith("unknown field")


@pytest.mark.parametrize("age", [300, -1, 121])
def test_impossible_age(age):
    assert "age" in errors_of(make_patient(age=age))


def test_wrong_types_are_not_coerced():
    errs = errors_of(make_patient(age="30", symptoms={"dysuria": "yes"}, red_flags={"fever": 1}))
    assert set(errs) >= {"age", "symptoms.dysuria", "red_flags.fever"}


def test_male_and_pregnant_is_a_contradiction():
    errs = errors_of(make_patient(sex="male", pregnancy_status="pregnant"))
    assert errs == {"pregnancy_status": "pregnancy_status is 'pregnant' but sex is 'male'"}


def test_contradiction_reported_alongside_other_errors():
    errs = errors_of(make_patient(sex="male", pregnancy_status="pregnant", age=300))
    assert set(errs) == {"age", "pregnancy_status"}


def test_asymptomatic_bacteriuria_with_symptoms_is_a_contradiction():
    errs = errors_of(make_patient(asymptomatic_bacteriuria=True))
    assert "asymptomatic_bacteriuria" in errs


def test_named_recent_antibiotics_with_flag_false_is_a_contradiction():
    errs = errors_of(make_patient(history={"recent_antibiotics": ["Macrobid"]}))
    assert "history.recent_antibiotics" in errs


def test_missing_safety_fields_are_required_not_defaulted():
    p = make_patient()
    del p["red_flags"]["fever"]
    del p["history"]["catheter"]
    errs = errors_of(p)
    assert errs["red_flags.fever"] == "required field is missing"
    assert errs["history.catheter"] == "required field is missing"


def test_bad_enum_value_lists_the_choices():
    errs = errors_of(make_patient(sex="F"))
    assert "female" in errs["sex"] and "male" in errs["sex"]


def test_unknown_locale_has_no_profile():
    errs = errors_of(make_patient(locale_code="US-CA"))
    assert "CA-ON" in errs["locale_code"]


def test_non_object_input():
    assert errors_of([1, 2]) == {"(root)": "expected a JSON object, got list"}


def test_list_item_errors_are_indexed():
    errs = errors_of(make_patient(history={"meds": ["ok", 5]}))
    assert "history.meds[1]" in errs


def test_negative_egfr_is_rejected():
    assert "egfr_mL_min" in errors_of(make_patient(egfr_mL_min=-3))


def test_every_bundled_sample_is_valid():
    from clinreason.samples import load_sample, sample_index

    names = sample_index()
    assert set(json.loads(resources.files("clinreason.protocols.uti_cystitis").joinpath("samples", "index.json").read_text())) <= set(names)
    for name in names:
        assess(load_sample(name), mode="deterministic")
