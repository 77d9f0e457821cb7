"""What the prescriber, pharmacist or patient must do for a plan: the first screen of the report,
the primary-care notification and the evaluation harness all read this one list.

An action comes from a caution (its `action` text and its codes) or from the protocol's follow-up
(reassess, notify the primary care provider). A code is `kind:target`: the kind says what sort of
act it is, the target what it is about (`monitor:inr`, `notify:anticoagulant-prescriber`,
`separate:cations`). Targets are protocol data; kinds are the engine's closed list.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from clinreason.protocols.result import Caution, ProtocolResult

KINDS = ("monitor", "notify", "separate", "counsel", "hold", "review", "prefer-other", "follow-up")
SEVERITY_ORDER = {"major": 0, "moderate": 1, "minor": 2, "counsel": 3}  # most severe first, wherever cautions are listed
NOTIFY_PRIMARY_CARE = "notify:primary-care"
REASSESS = "follow-up:reassess"


class Action(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    codes: list[str] = Field(default_factory=list)
    rule_id: str | None = Field(default=None, description="The caution rule that asks for it; None for the follow-up.")
    severity: str | None = None


def check_codes(codes: list[str]) -> list[str]:
    """The codes whose kind is not one of KINDS (data errors)."""
    return [c for c in codes if c.split(":", 1)[0] not in KINDS]


def plan_cautions(result: ProtocolResult, option: str | None) -> list[Caution]:
    """The cautions a plan that uses `option` carries (that option's and the patient's as a whole), most severe first."""
    return sorted((c for c in result.cautions if c.option in (option, None)), key=lambda c: SEVERITY_ORDER.get(c.severity, 4))


def plan_actions(result: ProtocolResult, option: str | None, follow_up: str = "Reassess at {reassess}.") -> list[Action]:
    """The actions for a plan that uses `option` (None: no prescription): the cautions about that
    option and about the patient as a whole, most severe first, then the follow-up (`follow_up` is
    the protocol's sentence for it, `Wording.follow_up`)."""
    out = [Action(text=c.action, codes=list(c.actions), rule_id=c.rule_id, severity=c.severity) for c in plan_cautions(result, option)]
    fu = result.follow_up
    if option is not None and fu is not None:
        out.append(Action(text=follow_up.format(reassess=fu.reassess), codes=[REASSESS]))
        if fu.notify_primary_prescriber:
            out.append(Action(text="Send the notification to the patient's primary care provider: what was prescribed, why, and the follow-up.",
                              codes=[NOTIFY_PRIMARY_CARE]))
    return out


def action_codes(actions: list[Action]) -> set[str]:
    return {c for a in actions for c in a.codes}
