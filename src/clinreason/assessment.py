"""Public entry point: `assess(patient, mode)` -> `Assessment`."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clinreason.agents.models import ReferralNote, Round
from clinreason.errors import FieldError, InvalidPatient
from clinreason.graph.report import Citation, Signoff
from clinreason.graph.safety import GateResult, Plan
from clinreason.knowledge.formulary import load_formulary
from clinreason.protocols.patient import Patient, parse_patient
from clinreason.protocols.profile import available_profiles, load_profile
from clinreason.protocols.result import Decision, ProtocolResult, Regimen
from clinreason.protocols.uti import assess_uti

Mode = Literal["full", "deterministic"]
MODES: tuple[str, ...] = ("full", "deterministic")


class Assessment(BaseModel):
    """The result of assessing one patient. `model_dump(mode="json")` is the wire form."""

    model_config = ConfigDict(frozen=True)

    mode: Mode
    decision: Decision
    recommendation: Regimen | None
    protocol: ProtocolResult = Field(description="Full output of the deterministic protocol node.")
    input_hash: str = Field(description="sha256 of the canonical patient JSON.")
    formulary_version: str
    # --- full mode only ---
    id: str | None = None
    status: Literal["awaiting_signoff", "final"] | None = None
    plan: Plan | None = Field(default=None, description="The final plan after the safety gate (and sign-off).")
    report_markdown: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    rounds: list[Round] = Field(default_factory=list, description="Doctor/pharmacist deliberation.")
    referral: ReferralNote | None = None
    safety: GateResult | None = None
    evidence: list[str] = Field(default_factory=list, description="Retrieved chunk ids.")
    audit: dict[str, Any] | None = None
    signoff: Signoff | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Assessment:
        """An assessment from its stored record (the wire form plus the store's own `updated_at`)."""
        return cls.model_validate({k: v for k, v in record.items() if k != "updated_at"})


def input_hash(patient: Patient) -> str:
    canonical = json.dumps(patient.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate(patient: Patient | dict[str, Any]) -> Patient:
    """Parse and check the patient, including that a profile exists for its locale."""
    parsed = parse_patient(patient)
    if parsed.locale_code not in available_profiles():
        known = ", ".join(sorted(available_profiles()))
        raise InvalidPatient(
            [FieldError("locale_code", f"no protocol profile for {parsed.locale_code!r} (available: {known})", "unknown_profile")]
        )
    return parsed


def assess_deterministic(patient: Patient) -> ProtocolResult:
    return assess_uti(patient, load_profile(patient.locale_code), load_formulary())


def assess(patient: Patient | dict[str, Any], mode: Mode = "full") -> Assessment:
    """Assess one patient.

    `patient` is a `Patient` or its JSON form (dict). Bad input raises
    `InvalidPatient` with field-level errors.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    parsed = validate(patient)
    if mode == "full":
        from clinreason.pipeline import get_pipeline  # LangGraph loads only for full mode

        return get_pipeline().run(parsed)
    result = assess_deterministic(parsed)
    return Assessment(
        mode=mode,
        decision=result.decision,
        recommendation=result.recommendation,
        protocol=result,
        input_hash=input_hash(parsed),
        formulary_version=load_formulary().version,
    )
