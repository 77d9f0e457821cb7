"""Code systems the intake reads, and the formulary's RxNorm ingredient concepts."""

from __future__ import annotations

import re
from functools import cache

from clinreason.formulary.core import read_data

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10-ca")
UCUM = "http://unitsofmeasure.org"
# US Core's birth sex extension: the input's `sex` is the sex assigned at birth; Patient.gender is the
# administrative gender, read only when the extension is absent (and the source says so).
BIRTH_SEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
BIRTH_SEX_CODES = {"F": "female", "M": "male", "UNK": "unknown"}
GENDERS = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}


@cache
def rxnorm_ingredients() -> dict[str, str]:
    """RxCUI -> formulary entry id (formulary/data/rxnorm.toml)."""
    try:
        return dict(read_data("rxnorm.toml")["codes"])
    except FileNotFoundError:
        return {}


def system_of(coding: dict[str, object]) -> str:
    return str(coding.get("system") or "")


def codes_in(concept: dict[str, object] | None, *systems: str) -> list[str]:
    """The codes of a CodeableConcept in any of `systems`."""
    codings = (concept or {}).get("coding") or []
    return [str(c.get("code")) for c in codings if isinstance(c, dict) and system_of(c) in systems and c.get("code")]


def concept_text(concept: dict[str, object] | None) -> str | None:
    """What a person reads for a CodeableConcept: its text, else its first coding's display."""
    if not concept:
        return None
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return str(concept["text"]).strip()
    for c in concept.get("coding") or []:  # type: ignore[union-attr]
        if isinstance(c, dict) and isinstance(c.get("display"), str) and c["display"].strip():
            display = str(c["display"]).strip()
            return snomed_name(display) if system_of(c) == SNOMED else display
    return None


# SNOMED CT fully specified names wrap the name in a pattern and a semantic tag ("Product containing
# anastrozole (medicinal product)", "Substance with penicillin structure (substance)"): the name is
# what the formulary recognises. Patterns: SNOMED CT editorial guide, medicinal product and substance hierarchies.
_SEMANTIC_TAG = re.compile(r"\s*\((?:substance|product|medicinal product|clinical drug|finding|disorder|situation)\)$", re.I)
_PATTERNS = (re.compile(r"^product containing (?:precisely |only )?(.+)$", re.I), re.compile(r"^substance with (.+) structure$", re.I))


def snomed_name(display: str) -> str:
    name = _SEMANTIC_TAG.sub("", display).strip()
    for pattern in _PATTERNS:
        if m := pattern.match(name):
            return m.group(1).strip()
    return name
