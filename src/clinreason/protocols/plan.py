"""The plan an assessment ends in, and the prescriber's sign-off of it.

Below the graph on purpose: the graph's sign-off node, the service's claim
and the API all judge a sign-off with the same pure function, against a fresh
evaluation of the protocol (never a stored result).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from clinreason.errors import Conflict, InvalidInput
from clinreason.hygiene import clean_text, mixed_script_message
from clinreason.protocols.registry import Validated, legacy_plan_actions
from clinreason.protocols.result import ProtocolResult, Regimen, UnverifiedEntry, renamed

PlanAction = Literal["treat", "escalate", "refer", "no_treatment", "rejected"]


class Plan(BaseModel):
    action: PlanAction
    option: str | None = Field(default=None, description="The option a treatment plan uses.")
    regimen: Regimen | None = None
    reason: str
    decided_by: Literal["agents", "protocol", "prescriber"]
    blocking_checks: list[UnverifiedEntry] = Field(
        default_factory=list, description="Unrecognised entries the prescriber must acknowledge before approving this plan.")

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        # Stored before protocols were plug-ins: the option was "agent", no treatment was named after a condition.
        data = renamed(data, {"agent": "option"})
        if isinstance(data, dict) and data.get("action") in legacy_plan_actions():
            data = {**data, "action": legacy_plan_actions()[data["action"]]}
        return data


class Signoff(BaseModel):
    action: str  # approve | amend | reject
    prescriber_id: str
    comment: str
    agent: str | None = None  # with amend: the option to use instead (the field name is the API's)
    signed_at: str
    acknowledged: list[str] = []  # the blocking checks (unrecognised entries) the prescriber acknowledged


class InvalidSignoff(InvalidInput):
    """A sign-off request that cannot be applied; `errors` maps field -> message."""

    problem_type = "invalid-signoff"
    title = "Invalid sign-off"

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))

    def field_errors(self) -> list[dict[str, str]]:
        return [{"field": f, "message": m} for f, m in self.errors.items()]


class UnacknowledgedChecks(Conflict):
    """Approval (or an amendment) refused until the prescriber acknowledges each blocking check."""

    problem_type = "blocking-checks-pending"
    title = "Blocking checks not acknowledged"

    def __init__(self, pending: list[UnverifiedEntry]):
        self.pending = pending
        super().__init__("approval needs the prescriber to acknowledge each unrecognised entry first: "
                         + "; ".join(f"{e.entry!r} ({e.field}): {e.reason}" for e in pending))

    def field_errors(self) -> list[dict[str, str]]:
        return [{"field": "acknowledged", "message": f"acknowledge {c.entry!r} ({c.field}): {c.reason}"} for c in self.pending]


def needs_signoff(plan: Plan) -> bool:
    return plan.action in ("treat", "escalate")


def treat_plan(protocol: ProtocolResult, option: str, reason: str, by: Literal["agents", "protocol", "prescriber"]) -> Plan:
    """A treatment plan with the regimen the evaluation computed for that option."""
    regimen = protocol.regimen_for(option)
    if regimen is None:
        raise ValueError(f"{option!r} is not an allowed option of this evaluation")
    return Plan(action="treat", option=option, regimen=regimen, reason=reason, decided_by=by, blocking_checks=protocol.checks_for(option))


def _ack_key(text: str) -> str:
    return " ".join(clean_text(text).casefold().split())


def _clean_field(payload: dict[str, Any], name: str, errors: dict[str, str]) -> str:
    text = clean_text(str(payload.get(name) or ""))
    if (message := mixed_script_message(text)) is not None:
        errors[name] = message
    return text


def validate_signoff(payload: dict[str, Any], request: Validated, plan: Plan) -> Signoff:
    """Pure check of a sign-off against the case; an amendment must stay within the protocol,
    and approving a plan with blocking checks needs each acknowledged (by entry text or field)."""
    errors: dict[str, str] = {}
    action = payload.get("action")
    if action not in ("approve", "amend", "reject"):
        errors["action"] = "must be approve, amend or reject"
    prescriber = _clean_field(payload, "prescriber_id", errors)
    if not prescriber or len(prescriber) > 100:
        errors["prescriber_id"] = "required, 1-100 characters"
    comment = _clean_field(payload, "comment", errors)
    if len(comment) > 2000:
        errors["comment"] = "at most 2000 characters"
    raw_acks = payload.get("acknowledged") or []
    if not isinstance(raw_acks, list) or not all(isinstance(a, str) for a in raw_acks):
        errors["acknowledged"] = "a list of the unrecognised entries (their text or field) the prescriber has checked"
        raw_acks = []
    acknowledged = [clean_text(a) for a in raw_acks]
    option = payload.get("agent")
    # Judged on a fresh evaluation, not the stored result: a record written before a rule
    # changed (or tampered with) must not approve what the protocol now holds back.
    protocol = request.evaluate()
    allowed = protocol.allowed_options
    if action == "amend":
        if not option:
            errors["agent"] = "amend needs the agent to use instead"
        elif option not in allowed:
            ev = protocol.find_option(option)
            why = f"; excluded: {'; '.join(x.rule_id for x in ev.exclusions)}" if ev else ""
            errors["agent"] = f"{option!r} is not allowed for this patient (allowed: {', '.join(allowed) or 'none'}){why}"
    elif option is not None:
        errors["agent"] = "only an amendment names an agent"
    checks: list[UnverifiedEntry] = []
    if action == "approve" and plan.action == "treat" and plan.option:
        checks = protocol.checks_for(plan.option)
    elif action == "amend" and option in allowed:
        checks = protocol.checks_for(option)
    known = {_ack_key(c.entry) for c in checks} | {_ack_key(c.field) for c in checks}
    stray = [a for a in acknowledged if _ack_key(a) not in known]
    if stray and action != "reject":
        listed = ", ".join(repr(c.entry) for c in checks) or "none"
        errors["acknowledged"] = f"not a blocking check of this plan: {', '.join(map(repr, stray))} (blocking checks: {listed})"
    if errors:
        raise InvalidSignoff(errors)
    acked = {_ack_key(a) for a in acknowledged}
    pending = [c for c in checks if _ack_key(c.entry) not in acked and _ack_key(c.field) not in acked]
    if pending:
        raise UnacknowledgedChecks(pending)
    return Signoff(action=action, prescriber_id=prescriber, comment=comment, agent=option, signed_at=str(payload.get("signed_at") or ""),
                   acknowledged=[c.entry for c in checks])
