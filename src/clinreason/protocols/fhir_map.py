"""What a protocol declares about FHIR input: which coded resources settle which input field.

Read from the protocol package's `fhir.toml`; the interfaces layer (clinreason.fhir) applies it.
Every field the mapping does not settle is answered in the protocol's generated Questionnaire,
so the mapping lists only what a record system already holds as coded data.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Quantities the intake knows how to convert (clinreason.fhir.units): the unit a field is kept in.
QuantityUnit = Literal["mL/min", "kg"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeSet(_Data):
    """Codes that name one thing, by code system, plus plain-text names for uncoded records."""

    loinc: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    icd10: tuple[str, ...] = ()
    text: tuple[str, ...] = Field(default=(), description="Lower-case names matched whole, for a record with text only.")


class ObservationMap(_Data):
    """An Observation whose code is one of `codes.loinc` settles `field`: a quantity converted to
    `unit`, or a coded answer looked up in `answers` (answer code -> the field's value)."""

    field: str
    codes: CodeSet
    unit: QuantityUnit | None = None
    answers: dict[str, str | bool] = Field(default_factory=dict)
    source: str = Field(description="Where the codes and answers are defined (terminology, year).")

    @model_validator(mode="after")
    def _one_kind(self) -> ObservationMap:
        if (self.unit is None) == (not self.answers):
            raise ValueError(f"observation for {self.field}: give a unit (a quantity) or answers (a coded value), not both or neither")
        return self


class ConditionMap(_Data):
    """An active Condition naming one of `codes` sets `field` to `value`."""

    field: str
    value: Any = True
    codes: CodeSet
    source: str


class Derivation(_Data):
    """`field` takes `value` when nothing answers it but one of `when_present` is measured: for a
    summary the protocol's rules read the measurement for (a judgement the record does not hold)."""

    field: str
    when_present: tuple[str, ...]
    value: str
    source: str


class FhirMapping(_Data):
    age: str = "age"
    sex: str = "sex"
    medications: str | None = Field(default=None, description="The input list that active medications fill.")
    allergies: str | None = Field(default=None, description="The input list that active medication allergies fill.")
    observations: tuple[ObservationMap, ...] = ()
    conditions: tuple[ConditionMap, ...] = ()
    derived: tuple[Derivation, ...] = ()
    by_sex: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Values that follow from the sex alone (e.g. a field that does not apply), when nothing else answers them.")
    no_allergy_codes: tuple[str, ...] = Field(default=(), description="SNOMED situations that state no known allergy.")
    source: str = ""

    def mapped_fields(self) -> set[str]:
        """Fields a Bundle's coded resources can settle without the questionnaire."""
        out = {self.age, self.sex, *(o.field for o in self.observations), *(c.field for c in self.conditions),
               *(d.field for d in self.derived), *(f for v in self.by_sex.values() for f in v)}
        return out | {f for f in (self.medications, self.allergies) if f}
