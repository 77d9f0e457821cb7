"""fhirclient's R4 models, loaded when first needed: without the `fhir` extra, a FHIR request is a
clear 503 problem (FhirUnavailable) while every other format keeps working."""

from __future__ import annotations

import importlib
from typing import Any

from clinreason.errors import ClinreasonError


class FhirUnavailable(ClinreasonError):
    """The FHIR models (the `fhir` extra) are not installed on this server; the other formats still work."""

    status = 503
    exit_code = 5
    problem_type = "fhir-unavailable"
    title = "FHIR unavailable"


def r4(module: str, name: str) -> Any:
    """`fhirclient.models.<module>.<name>`, or FhirUnavailable."""
    try:
        return getattr(importlib.import_module(f"fhirclient.models.{module}"), name)
    except ImportError as exc:
        raise FhirUnavailable("the FHIR models are not installed (pip install 'clinreason[fhir]')") from exc
