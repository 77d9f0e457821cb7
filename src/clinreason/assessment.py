"""Public entry point: `assess(patient, mode)` -> `Assessment`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clinreason.agents.models import ReferralNote, Round
from clinreason.graph.report import Citation
from clinreason.graph.safety import GateResult
from clinreason.protocols.plan import Plan, Signoff
from clinreason.protocols.registry import Validated, resolve
from clinreason.protocols.result import ProtocolResult, Regimen

Mode = Literal["full", "deterministic"]
MODES: tuple[str, ...] = ("full", "deterministic")


class Assessment(BaseModel):
    """The result of assessing one patient. `model_dump(mode="json")` is the wire form."""

    model_config = ConfigDict(frozen=True)

    mode: Mode
    decision: str = Field(description="A value from the assessment's protocol decision table (GET /v1/protocols).")
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
    input_sources: dict[str, Any] | None = Field(
        default=None, description="For a FHIR Bundle: where each input field came from (resource, path) and the resources not used.")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Assessment:
        """An assessment from its stored record (the wire form plus the store's own `updated_at`)."""
        return cls.model_validate({k: v for k, v in record.items() if k != "updated_at"})


def validate(request: Validated | dict[str, Any] | BaseModel) -> Validated:
    """Parse and check a request: its protocol (`protocol`, absent = the default), its patient, and
    that a profile exists for its locale. Bad input raises InvalidPatient naming each field."""
    return request if isinstance(request, Validated) else resolve(request)


def assess_deterministic(request: Validated | dict[str, Any]) -> ProtocolResult:
    v = validate(request)
    return v.evaluate()


def assess(request: Validated | dict[str, Any] | BaseModel, mode: Mode = "full") -> Assessment:
    """Assess one patient.

    `request` is the patient JSON (dict; `protocol` selects the protocol, `locale_code` the
    profile) or a validated request. Bad input raises `InvalidPatient` with field-level errors.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    parsed = validate(request)
    if mode == "full":
        from clinreason.pipeline import get_pipeline  # LangGraph loads only for full mode

        return get_pipeline().run(parsed)
    result = parsed.evaluate()
    return Assessment(
        mode=mode,
        decision=result.decision,
        recommendation=result.recommendation,
        protocol=result,
        input_hash=parsed.input_hash,
        formulary_version=parsed.spec.formulary.version,
    )
