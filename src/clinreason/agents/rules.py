"""Rules backend (offline default): the doctor and pharmacist as deterministic reasoners.

The split mirrors practice. The doctor assesses the patient (the exclusions the
protocol marks as the doctor's: `AgentPolicy.doctor_checks`) and proposes the
most preferred option that passes; the pharmacist reviews the medicines against
the formulary and re-checks everything, then approves, proposes another option,
or rejects. Every sentence cites retrieved passages. What is condition-specific
(rules, wording, which checks are whose) comes from the protocol's spec.
"""

from __future__ import annotations

from clinreason.agents.context import CaseContext
from clinreason.agents.models import (
    AgentOutcome,
    Claim,
    Concern,
    Proposal,
    ReferralNote,
    Review,
    Round,
)
from clinreason.knowledge.support import supports
from clinreason.protocols.result import (
    Exclusion,
    OptionEvaluation,
)


def _category(ctx: CaseContext, rule_id: str) -> str:
    return ctx.spec.agent_policy.categories.get(rule_id, "interaction")


def _criteria_claims(ctx: CaseContext) -> list[Claim]:
    return [
        Claim(text=f"{hit.title} ({hit.detail}).", citations=ctx.rule_citation(hit.rule_id))
        for hit in ctx.protocol.rules_fired
        if hit.rule_id.startswith(ctx.spec.agent_policy.criteria_rules)
    ]


def _exclusion_claim(ctx: CaseContext, agent: str, ex: Exclusion) -> Claim:
    return Claim(text=f"{ctx.option_name(agent)} is not suitable: {ex.reason} Evidence: {ex.evidence}.", citations=ctx.exclusion_citations(agent, ex))


def unverified_claim(ctx: CaseContext, agent: str) -> Claim:
    """Why an allowed agent cannot be verified: the unrecognised entries that could exclude it."""
    entries = "; ".join(f"{e.entry!r} ({e.field})" for e in ctx.protocol.checks_for(agent))
    name = ctx.option_name(agent)
    if agent in ctx.protocol.selectable_options:
        text = (f"{name} cannot be verified: {entries} not recognised by the formulary, and no verified agent remains, "
                "so it is recommended with a blocking check the prescriber must acknowledge at sign-off.")
    else:
        text = f"{name} cannot be verified: {entries} not recognised by the formulary, while a verified agent remains."
    return Claim(text=text, citations=ctx.rule_citation(ctx.spec.agent_policy.unverified_rule))


def _unverified_concern(ctx: CaseContext, agent: str) -> Concern:
    return Concern(category="unverified", agent=agent, rule_id=ctx.spec.agent_policy.unverified_rule, claim=unverified_claim(ctx, agent))


def _caution_concerns(ctx: CaseContext, option: str) -> list[Concern]:
    """The cautions the protocol found for the approved option (they never change the decision):
    each with the action the prescriber or patient must take, cited to its rule."""
    category = "caution" if "caution" in ctx.spec.concern_categories else "other"
    return [Concern(category=category, agent=option, rule_id=c.rule_id,
                    # The action, cited to the rule that states it; the patient data is in the result and the report.
                    claim=Claim(text=f"{c.message}: {c.action}", citations=ctx.rule_citation(c.rule_id)))
            for c in ctx.protocol.cautions if c.option in (option, None) and c.severity != "counsel"]


def rejected_agents(history: list[Round]) -> set[str]:
    """Agents already ruled out: proposals not approved, and every agent a concern was raised about."""
    out: set[str] = set()
    for r in history:
        if r.review.verdict != "approve" and r.proposal.agent:
            out.add(r.proposal.agent)
        out.update(c.agent for c in r.review.concerns)
    return out


class RulesDoctor:
    name = "rules"

    def propose(self, ctx: CaseContext, history: list[Round]) -> tuple[Proposal, AgentOutcome]:
        rejected = rejected_agents(history)
        suggested = history[-1].review.suggested_agent if history else None
        claims = _criteria_claims(ctx)
        skipped: list[Claim] = []
        order = sorted(ctx.protocol.options, key=lambda ev: (ev.option != suggested, ev.rank))
        selectable = ctx.protocol.selectable_options
        for ev in order:
            own = [x for x in ev.exclusions if x.rule_id in ctx.spec.agent_policy.doctor_checks]
            if own:
                skipped.append(_exclusion_claim(ctx, ev.option, own[0]))
                continue
            if ev.allowed and ev.option not in selectable:  # unverified while a verified agent remains
                skipped.append(unverified_claim(ctx, ev.option))
                continue
            if ev.option in rejected:
                skipped.append(Claim(text=f"{ctx.option_name(ev.option)} was ruled out in the pharmacist's review.", citations=[]))
                continue
            return Proposal(action="treat", agent=ev.option, rationale=claims + skipped + self._why(ctx, ev, suggested)), AgentOutcome(backend=self.name)
        return (
            Proposal(action="escalate", agent=None, rationale=claims + skipped + [
                Claim(text="No agent passes both the patient assessment and the pharmacist's review; a prescriber must decide.",
                      citations=ctx.rule_citation(ctx.spec.agent_policy.no_option_rule))]),
            AgentOutcome(backend=self.name),
        )

    def _why(self, ctx: CaseContext, ev: OptionEvaluation, suggested: str | None) -> list[Claim]:
        reg = ctx.protocol.regimen_for(ev.option) or ctx.profile.regimen(ev.option)
        lead = "Revised to the pharmacist's suggestion" if ev.option == suggested else f"Proposed as preference {ev.rank} in the {ctx.profile.id} order"
        claims = [Claim(
            text=f"{lead}: {ctx.option_name(ev.option)}, {reg.text}.",
            citations=ctx.choice_citation() + ctx.monograph_section(ev.option, "dose-and-regimen"),
        )]
        if ev.allowed and not ev.verified:
            claims.append(unverified_claim(ctx, ev.option))
        return claims

    def referral_note(self, ctx: CaseContext) -> tuple[ReferralNote, AgentOutcome]:
        p = ctx.protocol
        reasons = [Claim(text=f"{h.title} ({h.detail}).", citations=ctx.rule_citation(h.rule_id)) for h in p.rules_fired]
        wording = ctx.spec.wording
        referral = ctx.docs(wording.referral_docs)
        counselling = ctx.docs(wording.return_docs)

        def backing(text: str, pool: list[str]) -> list[str]:
            return [cid for cid in pool if supports(text, ctx.passages[cid])][:2]

        urgency = ctx.spec.referral_urgency(p)
        decision = ctx.spec.decision(p.decision)
        advice = decision.advice_same_day if urgency == "emergency_or_same_day" and decision.advice_same_day else decision.advice
        warn = wording.warn
        avoid = [
            _exclusion_claim(ctx, ev.option, ex)
            for ev in p.options
            for ex in ev.exclusions[:1]
        ]
        return (
            ReferralNote(
                urgency=urgency,
                reasons=reasons,
                patient_advice=[Claim(text=advice, citations=backing(advice, referral)), Claim(text=warn, citations=backing(warn, counselling + referral))],
                avoid_agents=avoid,
            ),
            AgentOutcome(backend=self.name),
        )


class RulesPharmacist:
    name = "rules"

    def review(self, ctx: CaseContext, proposal: Proposal, history: list[Round]) -> tuple[Review, AgentOutcome]:
        outcome = AgentOutcome(backend=self.name)
        selectable = ctx.protocol.selectable_options
        if proposal.action == "escalate":
            if selectable:
                alt = selectable[0]
                return Review(
                    verdict="modify", concerns=[], suggested_agent=alt,
                    summary=Claim(text=f"{ctx.option_name(alt)} has no exclusion for this patient in the formulary check; escalation is not needed.",
                                  citations=ctx.monograph_section(alt, "dose-and-regimen")),
                ), outcome
            return Review(verdict="approve", concerns=[], suggested_agent=None,
                          summary=Claim(text="Agreed: every agent is excluded for this patient, so a prescriber must decide.",
                                        citations=ctx.rule_citation(ctx.spec.agent_policy.no_option_rule))), outcome
        agent = proposal.agent or ""
        ev = ctx.protocol.find_option(agent)
        if ev is None:
            concern = Concern(category="other", agent=agent, rule_id=None,
                              claim=Claim(text=f"{agent!r} is not one of the protocol's agents for {ctx.spec.wording.condition}.",
                                          citations=ctx.choice_citation()))
            return self._redirect(ctx, [concern], history, agent), outcome
        if ev.allowed and agent not in selectable:  # unverified while a verified agent remains
            return self._redirect(ctx, [_unverified_concern(ctx, agent)], history, agent), outcome
        if ev.allowed:
            checked = [c for slug in ctx.spec.agent_policy.review_sections for c in ctx.monograph_section(agent, slug)]
            pending = ctx.protocol.checks_for(agent)
            caveat = (f" {len(pending)} entr{'y is' if len(pending) == 1 else 'ies are'} not recognised, so approval at sign-off "
                      "waits for the prescriber to check each by hand.") if pending else ""
            concerns = [_unverified_concern(ctx, agent)] if pending else []
            concerns += _caution_concerns(ctx, agent)
            return Review(
                verdict="approve", concerns=concerns, suggested_agent=None,
                summary=Claim(
                    text=f"{ctx.option_name(agent)} checked against {ctx.spec.wording.review_checked}: no exclusion applies.{caveat}",
                    citations=checked,
                ),
            ), outcome
        concerns = [
            Concern(category=_category(ctx, x.rule_id), agent=agent, rule_id=x.rule_id, claim=_exclusion_claim(ctx, agent, x))
            for x in ev.exclusions
        ]
        return self._redirect(ctx, concerns, history, agent), outcome

    def _redirect(self, ctx: CaseContext, concerns: list[Concern], history: list[Round], agent: str) -> Review:
        ruled_out = rejected_agents(history) | {agent}
        # Concerns about the agents the doctor might turn to next, so the doctor
        # does not have to find each one the hard way.
        for ev in ctx.protocol.options:
            if ev.option not in ruled_out and not ev.allowed:
                x = ev.exclusions[0]
                concerns.append(Concern(category=_category(ctx, x.rule_id), agent=ev.option, rule_id=x.rule_id, claim=_exclusion_claim(ctx, ev.option, x)))
        options = ([a for a in ctx.protocol.selectable_options if a not in ruled_out]
                   or [a for a in ctx.protocol.allowed_options if a not in ruled_out])
        if options:
            alt = options[0]
            return Review(
                verdict="modify", concerns=concerns, suggested_agent=alt,
                summary=Claim(text=f"Use {ctx.option_name(alt)} instead: it has no exclusion for this patient.",
                              citations=ctx.monograph_section(alt, "dose-and-regimen")),
            )
        return Review(verdict="reject", concerns=concerns, suggested_agent=None,
                      summary=Claim(text="No remaining agent is safe for this patient; refer to a prescriber.",
                                    citations=ctx.rule_citation(ctx.spec.agent_policy.no_option_rule)))
