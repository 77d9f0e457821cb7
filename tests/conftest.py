"""Shared fixtures. Tracing and telemetry stay off and nothing reaches the network."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

os.environ.setdefault("WEAVE_DISABLED", "true")
os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# One throwaway data dir per test session (index, caches, stores); CLI
# subprocesses inherit it, so the index is embedded once per run.
os.environ["CLINREASON_DATA_DIR"] = tempfile.mkdtemp(prefix="clinreason-test-")

from fake_openai import fake_openai  # noqa: E402,F401  (fixture re-export)

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


@pytest.fixture
def patient_factory() -> Callable[..., dict[str, Any]]:
    return make_patient


@pytest.fixture(scope="session")
def kb_index():
    """The real knowledge-base index (MiniLM + Chroma + BM25), built once per session."""
    from clinreason.knowledge.retrieval import get_index

    return get_index()
