"""Patient fixtures for tests: a healthy baseline with changes merged in."""

from __future__ import annotations

import copy
from typing import Any

BASE_PATIENT: dict[str, Any] = {
    "age": 30,
    "sex": "female",
    "pregnancy_status": "not_pregnant",
    "renal_function_summary": "normal",
    "symptoms": {"dysuria": True, "urgency": False, "frequency": False, "suprapubic_pain": False, "hematuria": False},
    "red_flags": {"fever": False, "rigors": False, "flank_pain": False, "nausea_vomiting": False, "systemic": False},
    "history": {
        "antibiotics_last_90d": False,
        "allergies": [],
        "meds": [],
        "ACEI_ARB_use": False,
        "catheter": False,
        "stones": False,
        "immunocompromised": False,
    },
    "recurrence": {"relapse_within_4w": False, "recurrent_6m": False, "recurrent_12m": False},
    "locale_code": "CA-ON",
}


UTI = "uti-cystitis"


def uti_spec():
    """The cystitis protocol's spec (rules, profiles, formulary)."""
    from clinreason.protocols.registry import get_spec

    return get_spec(UTI)


def uti_formulary():
    """The formulary the cystitis protocol evaluates with (was `load_formulary()`)."""
    return uti_spec().formulary


def make_patient(**changes: Any) -> dict[str, Any]:
    """A healthy 30-year-old woman with acute dysuria, with `changes` merged in.

    Nested sections merge key by key: make_patient(history={"meds": ["warfarin"]}).
    """
    patient = copy.deepcopy(BASE_PATIENT)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(patient.get(key), dict):
            patient[key].update(value)
        else:
            patient[key] = value
    return patient
