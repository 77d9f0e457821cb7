"""Safety gate: a deterministic re-check of the final plan.

The agents can only choose among the agents the protocol lets a plan use for
this patient (`selectable_agents`: the verified allowed agents while any
remain, else the unverified allowed ones, which carry blocking checks), or
escalate. The gate re-runs the protocol from the patient data
(so a tampered or stale state cannot slip through), compares, and vetoes
anything else; a vetoed choice is replaced by the protocol's own
recommendation and the veto is recorded. A referral note less urgent than
the re-checked protocol requires is raised to that urgency, also recorded.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from clinreason.agents.models import Proposal, ReferralNote, Review
from clinreason.agents.rules import urgency_shortfall
from clinreason.knowledge.formulary import load_formulary
from clinreason.protocols.patient import Patient
from clinreason.protocols.profile import load_profile
from clinreason.protocols.result import Decision, ProtocolResult, Regimen, UnverifiedEntry
from clinreason.protocols.uti import assess_uti


class Plan(BaseModel):
    action: Literal["treat", "escalate", "refer", "no_antibiotics", "rejected"]
    agent: str | None = None
    regimen: Regimen | None = None
    reason: str
    decided_by: Literal["agents", "protocol", "prescriber"]
    blocking_checks: list[UnverifiedEntry] = Field(
        default_factory=list, description="Unrecognised entries the prescriber must acknowledge before approving this plan.")


class GateResult(BaseModel):
    passed: bool
    vetoes: list[str] = Field(default_factory=list)
    plan: Plan
    referral: ReferralNote | None = None  # the referral note, its urgency raised if it was too late


def treat_plan(protocol: ProtocolResult, agent: str, reason: str, by: Literal["agents", "protocol", "prescriber"]) -> Plan:
    return Plan(action="treat", agent=agent, regimen=load_profile(protocol.profile_id).regimen(agent), reason=reason, decided_by=by,
                blocking_checks=protocol.checks_for(agent))


def safety_gate(patient: Patient, protocol: ProtocolResult, proposal: Proposal | None, review: Review | None, rounds: int, max_rounds: int,
                referral: ReferralNote | None = None) -> GateResult:
    recheck = assess_uti(patient, load_profile(protocol.profile_id), load_formulary())
    if recheck != protocol:
        # The stored protocol result does not match the patient: trust only the re-check.
        protocol = recheck
        vetoes = ["stored protocol result did not match a fresh evaluation; the fresh result was used"]
    else:
        vetoes = []
    if protocol.decision is not Decision.recommend_treatment:
        if proposal is not None and proposal.action == "treat":
            vetoes.append(f"treatment proposed although the protocol decision is {protocol.decision.value}")
        action = "no_antibiotics" if protocol.decision is Decision.no_antibiotics else "refer"
        plan = Plan(action=action, reason=f"protocol decision {protocol.decision.value}", decided_by="protocol")
        if referral is not None and (need := urgency_shortfall(referral.urgency, protocol)):
            vetoes.append(f"referral urgency {referral.urgency!r} raised to {need!r} for {protocol.decision.value}")
            referral = referral.model_copy(update={"urgency": need})
        return GateResult(passed=not vetoes, vetoes=vetoes, plan=plan, referral=referral)

    selectable = protocol.selectable_agents
    agreed = review is not None and review.verdict == "approve"
    if proposal is None or not agreed:
        plan = Plan(action="escalate", reason=f"doctor and pharmacist did not agree within {max_rounds} round(s)", decided_by="agents")
    elif proposal.action == "escalate":
        plan = Plan(action="escalate", reason="the agents escalated to a human prescriber", decided_by="agents")
    elif proposal.agent in selectable:
        plan = treat_plan(protocol, proposal.agent, f"agreed by doctor and pharmacist in round {rounds}", "agents")
    else:
        ev = protocol.find_agent(proposal.agent or "")
        if ev is None:
            why = "not a protocol agent"
        elif ev.exclusions:
            why = "; ".join(f"{x.rule_id}: {x.reason}" for x in ev.exclusions)
        else:
            why = f"TX-UNVERIFIED: unverified ({', '.join(ev.unverified_by)}) while a verified agent remains"
        vetoes.append(f"{proposal.agent!r} vetoed ({why})")
        assert protocol.recommendation is not None  # recommend_treatment always carries one
        plan = treat_plan(protocol, protocol.recommendation.agent, f"agents chose {proposal.agent!r}, which the protocol does not let a plan use; replaced by the protocol's recommendation", "protocol")
    return GateResult(passed=not vetoes, vetoes=vetoes, plan=plan)
