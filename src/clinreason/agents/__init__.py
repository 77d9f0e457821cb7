"""Doctor and pharmacist agents: one interface, two backends (rules, llm)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: importing the package must stay cheap for `assess(mode="deterministic")`
    from clinreason.agents.context import CaseContext
    from clinreason.agents.models import AgentOutcome, Proposal, ReferralNote, Review, Round
    from clinreason.config import Settings


class Doctor(Protocol):
    def propose(self, ctx: CaseContext, history: list[Round]) -> tuple[Proposal, AgentOutcome]: ...
    def referral_note(self, ctx: CaseContext) -> tuple[ReferralNote, AgentOutcome]: ...


class Pharmacist(Protocol):
    def review(self, ctx: CaseContext, proposal: Proposal, history: list[Round]) -> tuple[Review, AgentOutcome]: ...


def make_agents(settings: Settings) -> tuple[Doctor, Pharmacist]:
    if settings.agent_backend == "llm":
        from clinreason.agents.llm import LLMDoctor, LLMPharmacist

        return LLMDoctor(settings), LLMPharmacist(settings)
    from clinreason.agents.rules import RulesDoctor, RulesPharmacist

    return RulesDoctor(), RulesPharmacist()
