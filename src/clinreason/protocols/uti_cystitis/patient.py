"""Patient input models.

Compatible with utiplayground's `PatientState` JSON (including the spellings
`ACEI_ARB_use` and `egfr_mL_min`), plus the protocol's extensions. Unknown
fields, wrong types, impossible values and contradictions are rejected with
field-level errors: nothing is coerced from strings or silently dropped.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, Field, StrictBool, StrictFloat, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from clinreason.errors import FieldError
from clinreason.protocols.inputs import CleanText, EntryText, Sex, Strict, parse_input, reject_double_spelling


class PregnancyStatus(StrEnum):
    pregnant = "pregnant"
    not_pregnant = "not_pregnant"
    no = "no"
    not_applicable = "not_applicable"
    unknown = "unknown"


class RenalFunction(StrEnum):
    normal = "normal"
    impaired = "impaired"
    failure = "failure"
    unknown = "unknown"


class Symptoms(Strict):
    dysuria: StrictBool
    urgency: StrictBool
    frequency: StrictBool
    suprapubic_pain: StrictBool
    hematuria: StrictBool
    confusion: StrictBool = False
    delirium: StrictBool = False
    gross_hematuria: StrictBool = False
    vaginal_discharge: StrictBool = False
    vaginal_itch: StrictBool = False

    def urinary(self) -> bool:
        return any((self.dysuria, self.urgency, self.frequency, self.suprapubic_pain, self.hematuria))


class RedFlags(Strict):
    fever: StrictBool
    rigors: StrictBool
    flank_pain: StrictBool
    nausea_vomiting: StrictBool
    systemic: StrictBool
    # utiplayground treats back pain as optional; absent means not reported.
    back_pain: StrictBool = False


class History(Strict):
    antibiotics_last_90d: StrictBool
    allergies: list[EntryText] = Field(default_factory=list, max_length=50)
    meds: list[EntryText] = Field(default_factory=list, max_length=100)
    acei_arb_use: StrictBool = Field(
        default=False, validation_alias=AliasChoices("ACEI_ARB_use", "acei_arb_use")
    )
    catheter: StrictBool
    stones: StrictBool
    immunocompromised: StrictBool
    neurogenic_bladder: StrictBool = False
    recent_antibiotics: list[EntryText] = Field(default_factory=list, max_length=20)
    g6pd_deficiency: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        return reject_double_spelling(data, "ACEI_ARB_use", "acei_arb_use")

    @model_validator(mode="after")
    def _check(self) -> History:
        for name in ("allergies", "meds", "recent_antibiotics"):
            for i, item in enumerate(getattr(self, name)):
                if not item or len(item) > 200:
                    raise PydanticCustomError(
                        "text_length", f"{name}[{i}] must be 1-200 characters"
                    )
        if self.recent_antibiotics and not self.antibiotics_last_90d:
            raise PydanticCustomError(
                "contradiction",
                "recent_antibiotics lists antibiotics but antibiotics_last_90d is false",
            )
        return self


class Recurrence(Strict):
    relapse_within_4w: StrictBool
    recurrent_6m: StrictBool
    recurrent_12m: StrictBool


class Patient(Strict):
    """One patient presenting with possible cystitis."""

    age: StrictInt = Field(ge=0, le=120, description="Age in whole years.")
    sex: Sex = Field(description="Sex assigned at birth.")
    pregnancy_status: PregnancyStatus
    renal_function_summary: RenalFunction
    egfr_ml_min: StrictFloat | None = Field(
        default=None, ge=0, le=200, validation_alias=AliasChoices("egfr_mL_min", "egfr_ml_min")
    )
    crcl_ml_min: StrictFloat | None = Field(
        default=None, ge=0, le=250, validation_alias=AliasChoices("crcl_mL_min", "crcl_ml_min")
    )
    symptoms: Symptoms
    red_flags: RedFlags
    history: History
    recurrence: Recurrence
    locale_code: CleanText = Field(min_length=2, max_length=10)
    asymptomatic_bacteriuria: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        data = reject_double_spelling(data, "egfr_mL_min", "egfr_ml_min")
        return reject_double_spelling(data, "crcl_mL_min", "crcl_ml_min")

    @model_validator(mode="after")
    def _contradictions(self) -> Patient:
        if self.sex is Sex.male and self.pregnancy_status is PregnancyStatus.pregnant:
            raise PydanticCustomError(
                "contradiction", "pregnancy_status is 'pregnant' but sex is 'male'"
            )
        if self.asymptomatic_bacteriuria and self.symptoms.urinary():
            raise PydanticCustomError(
                "contradiction",
                "asymptomatic_bacteriuria is true but urinary symptoms are reported",
            )
        return self

    @property
    def pregnant(self) -> bool:
        return self.pregnancy_status is PregnancyStatus.pregnant

    def renal_values(self) -> list[tuple[str, float]]:
        """Measured kidney function values present, as (label, mL/min)."""
        pairs = (("eGFR", self.egfr_ml_min), ("CrCl", self.crcl_ml_min))
        return [(label, float(v)) for label, v in pairs if v is not None]


# Where a contradiction is reported on the whole model, name the field(s) it is about.
_CONTRADICTION_FIELDS = {
    "pregnancy_status is 'pregnant' but sex is 'male'": "pregnancy_status",
    "asymptomatic_bacteriuria is true but urinary symptoms are reported": "asymptomatic_bacteriuria",
    "recent_antibiotics lists antibiotics but antibiotics_last_90d is false": "recent_antibiotics",
}


def parse_patient(data: Any) -> Patient:
    """Validate raw JSON-like data into a Patient or raise InvalidPatient."""
    return parse_input(Patient, data, contradiction_fields=_CONTRADICTION_FIELDS, raw_contradictions=_raw_contradictions)


def _raw_contradictions(data: dict[str, Any]) -> list[FieldError]:
    out = []
    if data.get("sex") == "male" and data.get("pregnancy_status") == "pregnant":
        out.append(FieldError("pregnancy_status", "pregnancy_status is 'pregnant' but sex is 'male'", "contradiction"))
    symptoms = data.get("symptoms")
    if data.get("asymptomatic_bacteriuria") is True and isinstance(symptoms, dict):
        if any(symptoms.get(k) is True for k in ("dysuria", "urgency", "frequency", "suprapubic_pain", "hematuria")):
            out.append(FieldError("asymptomatic_bacteriuria", "asymptomatic_bacteriuria is true but urinary symptoms are reported", "contradiction"))
    return out
