"""A second jurisdiction is a profile file, not new code."""

from __future__ import annotations

import tomllib
from importlib import resources

from patients import make_patient

from clinreason.assessment import validate
from clinreason.knowledge.formulary import load_formulary
from clinreason.protocols.profile import Profile, load_profile
from clinreason.protocols.uti import assess_uti


def nice_like_profile() -> Profile:
    """CA-ON's file with NICE NG109's nitrofurantoin threshold (eGFR 45) and trimethoprim regimen."""
    data = tomllib.loads(resources.files("clinreason.protocols.profiles").joinpath("ca-on.toml").read_text())
    data.update(id="UK-NICE-TEST", version="test", source="NICE NG109 (2018)")
    data["renal_exclusion_below"] = {"nitrofurantoin": 45}
    data["regimens"]["trimethoprim"].update(dose="200 mg", frequency="BID")
    return Profile.model_validate(data)


def test_renal_threshold_comes_from_the_profile():
    patient = validate(make_patient(age=70, egfr_mL_min=40))
    ca_on = assess_uti(patient, load_profile("CA-ON"), load_formulary())
    nice = assess_uti(patient, nice_like_profile(), load_formulary())
    assert ca_on.recommendation.agent == "nitrofurantoin"
    assert [x.rule_id for x in nice.agent("nitrofurantoin").exclusions] == ["EX-RENAL"]
    assert "45" in nice.agent("nitrofurantoin").exclusions[0].reason
    assert nice.recommendation.agent == "tmp_smx" and nice.profile_id == "UK-NICE-TEST"


def test_regimen_comes_from_the_profile():
    patient = validate(make_patient(history={"meds": ["warfarin"], "allergies": ["Macrobid"]}))
    nice = assess_uti(patient, nice_like_profile(), load_formulary())
    assert nice.recommendation.agent == "trimethoprim" and nice.recommendation.frequency == "BID"
