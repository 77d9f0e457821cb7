"""Safety gate: a deterministic re-check of the final plan.

The agents can only choose among the options the protocol lets a plan use for
this patient (`selectable_options`: the verified allowed options while any
remain, else the unverified allowed ones, which carry blocking checks), or
escalate. The gate re-runs the protocol from the patient data
(so a tampered or stale state cannot slip through), compares, and vetoes
anything else; a vetoed choice is replaced by the protocol's own
recommendation and the veto is recorded. A referral note less urgent than
the re-checked protocol requires is raised to that urgency, also recorded.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from clinreason.agents.models import Proposal, ReferralNote, Review
from clinreason.protocols.plan import Plan, treat_plan
from clinreason.protocols.registry import Validated
from clinreason.protocols.result import ProtocolResult


class GateResult(BaseModel):
    passed: bool
    vetoes: list[str] = Field(default_factory=list)
    plan: Plan
    referral: ReferralNote | None = None  # the referral note, its urgency raised if it was too late


def safety_gate(request: Validated, protocol: ProtocolResult, proposal: Proposal | None, review: Review | None, rounds: int, max_rounds: int,
                referral: ReferralNote | None = None) -> GateResult:
    spec = request.spec
    recheck = request.evaluate()
    if recheck != protocol:
        # The stored protocol result does not match the patient: trust only the re-check.
        protocol = recheck
        vetoes = ["stored protocol result did not match a fresh evaluation; the fresh result was used"]
    else:
        vetoes = []
    kind = spec.plan_kind(protocol)
    if kind != "treat":
        if proposal is not None and proposal.action == "treat":
            vetoes.append(f"treatment proposed although the protocol decision is {protocol.decision}")
        action = "no_treatment" if kind == "none" else "refer"
        plan = Plan(action=action, reason=f"protocol decision {protocol.decision}", decided_by="protocol")
        if referral is not None and (need := spec.urgency_shortfall(referral.urgency, protocol)):
            vetoes.append(f"referral urgency {referral.urgency!r} raised to {need!r} for {protocol.decision}")
            referral = referral.model_copy(update={"urgency": need})
        return GateResult(passed=not vetoes, vetoes=vetoes, plan=plan, referral=referral)

    selectable = protocol.selectable_options
    agreed = review is not None and review.verdict == "approve"
    if proposal is None or not agreed:
        plan = Plan(action="escalate", reason=f"doctor and pharmacist did not agree within {max_rounds} round(s)", decided_by="agents")
    elif proposal.action == "escalate":
        plan = Plan(action="escalate", reason="the agents escalated to a human prescriber", decided_by="agents")
    elif proposal.agent in selectable:
        plan = treat_plan(protocol, proposal.agent, f"agreed by doctor and pharmacist in round {rounds}", "agents")
    else:
        ev = protocol.find_option(proposal.agent or "")
        if ev is None:
            why = "not a protocol option"
        elif ev.exclusions:
            why = "; ".join(f"{x.rule_id}: {x.reason}" for x in ev.exclusions)
        else:
            why = f"{spec.agent_policy.unverified_rule}: unverified ({', '.join(ev.unverified_by)}) while a verified option remains"
        vetoes.append(f"{proposal.agent!r} vetoed ({why})")
        assert protocol.recommendation is not None  # a treatment decision always carries one
        plan = treat_plan(protocol, protocol.recommendation.agent, f"agents chose {proposal.agent!r}, which the protocol does not let a plan use; replaced by the protocol's recommendation", "protocol")
    return GateResult(passed=not vetoes, vetoes=vetoes, plan=plan)
