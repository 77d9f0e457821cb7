"""What the doctor and pharmacist agents say: structured, cited, bounded.

These are also the structured-output schemas the LLM backend asks for, so the
field descriptions double as instructions to the model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clinreason.protocols.spec import URGENCY_RANK, Urgency  # noqa: F401  (URGENCY_RANK re-exported)

AgentName = Literal["doctor", "pharmacist"]


class Claim(BaseModel):
    """One statement and the chunk ids that support it."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="One sentence of clinical reasoning.")
    citations: list[str] = Field(description="Chunk ids from the provided passages that support this sentence.")


class Proposal(BaseModel):
    """The doctor's plan for a patient eligible for treatment."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["treat", "escalate"] = Field(description="treat with one allowed agent, or escalate to a human prescriber.")
    agent: str | None = Field(description="Agent id when action is treat (one of the allowed agents); null when escalating.")
    rationale: list[Claim] = Field(description="Why this agent (or why escalate), each sentence cited.")


class Concern(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(description="What kind of problem: one of the protocol's concern categories (allergy, interaction, ...).")
    agent: str = Field(description="The agent id the concern is about.")
    rule_id: str | None = Field(description="Protocol rule id behind the concern (from the exclusions), if any.")
    claim: Claim


class Review(BaseModel):
    """The pharmacist's check of a proposal."""

    model_config = ConfigDict(extra="forbid")
    verdict: Literal["approve", "modify", "reject"] = Field(
        description="approve the proposed agent; modify = use another agent (suggested_agent); reject = no agent is acceptable."
    )
    concerns: list[Concern] = Field(description="Problems found with the proposal, each cited.")
    suggested_agent: str | None = Field(description="With modify: the allowed agent to use instead; otherwise null.")
    summary: Claim




class ReferralNote(BaseModel):
    """The doctor's note when the decision is a referral or no treatment."""

    model_config = ConfigDict(extra="forbid")
    urgency: Urgency
    reasons: list[Claim] = Field(description="Why the patient is referred (or gets no treatment), cited.")
    patient_advice: list[Claim] = Field(description="What to tell the patient, cited.")
    avoid_agents: list[Claim] = Field(description="Agents a physician should avoid for this patient and why, cited.")


class Fallback(BaseModel):
    """An LLM call that failed or broke the bounds; the rules backend answered instead."""

    agent: AgentName
    step: str  # propose | review | referral
    round: int
    reason: str


class Round(BaseModel):
    number: int
    proposal: Proposal
    review: Review
    doctor_backend: str
    pharmacist_backend: str


class AgentOutcome(BaseModel):
    """What an agent backend returns: the answer plus what the bounds did to it."""

    backend: str  # "rules" or "llm:<model>"
    fallback: Fallback | None = None
    violations: list[str] = Field(default_factory=list)  # bound breaches that were vetoed
    dropped: list[str] = Field(default_factory=list)  # parts of an accepted LLM answer removed at the boundary (labels, never the text)
