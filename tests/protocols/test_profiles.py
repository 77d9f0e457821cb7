"""A second jurisdiction is a profile file, not new code."""

from __future__ import annotations

import tomllib
from importlib import resources

from patients import make_patient, uti_formulary, uti_spec

from clinreason.assessment import validate
from clinreason.protocols.uti_cystitis import evaluate
from clinreason.protocols.uti_cystitis.profile import UtiProfile


def nice_like_profile() -> UtiProfile:
    """CA-ON's file with NICE NG109's nitrofurantoin threshold (eGFR 45) and trimethoprim regimen."""
    data = tomllib.loads(resources.files("clinreason.protocols.uti_cystitis").joinpath("profiles", "ca-on.toml").read_text())
    data.update(id="UK-NICE-TEST", version="test", source="NICE NG109 (2018)")
    data["renal_exclusion_below"] = {"nitrofurantoin": 45}
    data["regimens"]["trimethoprim"].update(dose="200 mg", frequency="BID")
    return UtiProfile.model_validate(data)


def test_renal_threshold_comes_from_the_profile():
    patient = validate(make_patient(age=70, egfr_mL_min=40)).patient
    ca_on = evaluate(patient, uti_spec().profile("CA-ON"), uti_formulary())
    nice = evaluate(patient, nice_like_profile(), uti_formulary())
    assert ca_on.recommendation.agent == "nitrofurantoin"
    assert [x.rule_id for x in nice.option("nitrofurantoin").exclusions] == ["EX-RENAL"]
    assert "45" in nice.option("nitrofurantoin").exclusions[0].reason
    assert nice.recommendation.agent == "tmp_smx" and nice.profile_id == "UK-NICE-TEST"


def test_regimen_comes_from_the_profile():
    patient = validate(make_patient(history={"meds": ["warfarin"], "allergies": ["Macrobid"]})).patient
    nice = evaluate(patient, nice_like_profile(), uti_formulary())
    assert nice.recommendation.agent == "trimethoprim" and nice.recommendation.frequency == "BID"
