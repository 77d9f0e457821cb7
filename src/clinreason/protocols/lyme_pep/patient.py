"""The input model of Lyme disease post-exposure prophylaxis (spec: protocol/lyme-pep.md).

Unknown fields and impossible values (negative hours, age 300, male and
pregnant, a weight of 0 or 400 kg) are field errors. Whether a weight is
required depends on the profile's child age (a jurisdiction number), so that
check runs once the profile is known (`check`). `location` is kept for the
record and never decides anything.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, StrictBool, StrictFloat, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from clinreason.errors import FieldError
from clinreason.protocols.inputs import CleanText, EntryText, Sex, Strict, parse_input
from clinreason.protocols.lyme_pep.profile import LymeProfile

Hours = StrictInt | StrictFloat


class PregnancyStatus(StrEnum):
    pregnant = "pregnant"
    not_pregnant = "not_pregnant"
    not_applicable = "not_applicable"
    unknown = "unknown"


class Tick(Strict):
    still_attached: StrictBool
    hours_since_removal: Hours | None = Field(default=None, ge=0, le=24 * 365,
                                              description="Hours since the tick was removed; absent or null when it is still attached.")
    estimated_hours_attached: Hours = Field(ge=0, le=24 * 60, description="How long the tick fed, as estimated from the exposure and its engorgement.")
    higher_risk_area: StrictBool = Field(description="Bitten where the current risk-area map shows established blacklegged ticks.")
    location: CleanText | None = Field(default=None, max_length=200, description="Free text for the record; decides nothing.")

    @model_validator(mode="after")
    def _removal(self) -> Tick:
        if not self.still_attached and self.hours_since_removal is None:
            raise PydanticCustomError("contradiction", "hours_since_removal is required when the tick is no longer attached")
        if self.still_attached and self.hours_since_removal not in (None, 0):
            raise PydanticCustomError("contradiction", "the tick is still attached, so hours_since_removal must be absent, null or 0")
        return self


class Symptoms(Strict):
    """Every answer is required: a symptom left out is not a symptom ruled out."""

    erythema_migrans: StrictBool
    fever: StrictBool
    chills: StrictBool
    headache: StrictBool
    stiff_neck: StrictBool
    fatigue: StrictBool
    decreased_appetite: StrictBool
    muscle_joint_aches: StrictBool
    joint_swelling: StrictBool
    swollen_lymph_nodes: StrictBool


class History(Strict):
    allergies: list[EntryText] = Field(default_factory=list, max_length=50)
    meds: list[EntryText] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _lengths(self) -> History:
        for name in ("allergies", "meds"):
            for i, item in enumerate(getattr(self, name)):
                if not item or len(item) > 200:
                    raise PydanticCustomError("text_length", f"{name}[{i}] must be 1-200 characters")
        return self


class Patient(Strict):
    """One person seen after a tick bite."""

    age: StrictInt = Field(ge=0, le=120, description="Age in whole years.")
    sex: Sex = Field(description="Sex assigned at birth.")
    pregnancy_status: PregnancyStatus
    breastfeeding: StrictBool = False
    weight_kg: Hours | None = Field(default=None, ge=1, le=300, description="Current weight in kg; required for a child (weight-based dose).")
    tick: Tick
    symptoms: Symptoms
    history: History
    locale_code: CleanText = Field(min_length=2, max_length=10)

    @model_validator(mode="after")
    def _contradictions(self) -> Patient:
        if self.sex is Sex.male and self.pregnancy_status is PregnancyStatus.pregnant:
            raise PydanticCustomError("contradiction", "pregnancy_status is 'pregnant' but sex is 'male'")
        return self

    @property
    def pregnant(self) -> bool:
        return self.pregnancy_status is PregnancyStatus.pregnant

    @property
    def hours_since_removal(self) -> float:
        """A tick still attached is removed at the visit: 0 hours."""
        return 0.0 if self.tick.still_attached else float(self.tick.hours_since_removal or 0)


_CONTRADICTION_FIELDS = {
    "pregnancy_status is 'pregnant' but sex is 'male'": "pregnancy_status",
    "the tick is still attached, so hours_since_removal must be absent, null or 0": "hours_since_removal",
    "hours_since_removal is required when the tick is no longer attached": "hours_since_removal",
}


def _raw_contradictions(data: dict[str, Any]) -> list[FieldError]:
    if data.get("sex") == "male" and data.get("pregnancy_status") == "pregnant":
        return [FieldError("pregnancy_status", "pregnancy_status is 'pregnant' but sex is 'male'", "contradiction")]
    return []


def parse_patient(data: Any) -> Patient:
    """Validate raw JSON-like data into a Patient or raise InvalidPatient."""
    return parse_input(Patient, data, contradiction_fields=_CONTRADICTION_FIELDS, raw_contradictions=_raw_contradictions)


def check(patient: Patient, profile: LymeProfile) -> list[FieldError]:
    """What the profile's numbers require of the input: a weight for a child."""
    if patient.age < profile.child_age_below and patient.weight_kg is None:
        return [FieldError("weight_kg", f"required for a patient younger than {profile.child_age_below}: the dose is "
                           f"{profile.child_mg_per_kg:g} mg/kg", "missing")]
    return []
