"""Rules backend (offline default): the doctor and pharmacist as deterministic reasoners.

The doctor proposes the most preferred option the protocol lets a plan use for
this patient, and says why each option above it was passed over (its exclusion,
an unverified entry, or the pharmacist's earlier concern). The pharmacist
reviews that proposal against the whole medication list, through the
protocol's medication review (cautions), and answers:

- approve, with the actions the prescriber must take (each caution's action);
- modify, only when a major caution about the proposed option makes a later
  allowed option the better choice, citing that caution;
- reject, when no option the protocol allows remains.

Neither stages a mistake for the other to catch. Every sentence cites
retrieved passages; what is condition-specific comes from the protocol's spec.
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
from clinreason.protocols import plain
from clinreason.protocols.actions import plan_cautions
from clinreason.protocols.result import (
    Caution,
    Exclusion,
    OptionEvaluation,
)

MAJOR = "major"


def _category(ctx: CaseContext, rule_id: str) -> str:
    return ctx.spec.agent_policy.categories.get(rule_id, "interaction")


def _words(ctx: CaseContext, text: str) -> str:
    """Field names and option ids in a rule's detail, as words (protocols.plain)."""
    return plain.detail(text, ctx.spec.wording.field_labels, {ev.option: ctx.option_name(ev.option) for ev in ctx.protocol.options})


def _criteria_claims(ctx: CaseContext) -> list[Claim]:
    return [
        Claim(text=f"{hit.title} ({_words(ctx, hit.detail)}).", citations=ctx.rule_citation(hit.rule_id))
        for hit in ctx.protocol.rules_fired
        if hit.rule_id.startswith(ctx.spec.agent_policy.criteria_rules)
    ]


def _exclusion_claim(ctx: CaseContext, agent: str, ex: Exclusion) -> Claim:
    evidence = _words(ctx, ex.evidence)
    # The reason's first sentence: a rule's advice after it ("choose X or Y if otherwise suitable") can name
    # options this patient cannot have either; the cited rule passage carries it.
    reason = plain.first_sentence(ex.reason)
    return Claim(text=f"{ctx.option_name(agent)} is not suitable: {reason} Evidence: {evidence}.", citations=ctx.exclusion_citations(agent, ex))


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


def _caution_category(ctx: CaseContext) -> str:
    return "caution" if "caution" in ctx.spec.concern_categories else "other"


def _caution_claim(ctx: CaseContext, c: Caution) -> Claim:
    # The finding and its action, cited to the rule that states it; the patient data is in the result and the report.
    return Claim(text=f"{c.message}: {c.action}", citations=ctx.rule_citation(c.rule_id))


def _caution_concerns(ctx: CaseContext, option: str) -> list[Concern]:
    """The cautions for a plan that uses `option` (they never change the decision), most severe first:
    each with the action the prescriber or patient must take, cited to its rule."""
    found = [c for c in plan_cautions(ctx.protocol, option) if c.severity != "counsel"]
    return [Concern(category=_caution_category(ctx), agent=option, rule_id=c.rule_id, claim=_caution_claim(ctx, c))
            for c in found]


def major_cautions(ctx: CaseContext, option: str) -> list[Caution]:
    """The major cautions about this option itself (not the patient-level ones, which any option shares)."""
    return [c for c in ctx.protocol.cautions if c.option == option and c.severity == MAJOR]


def better_option(ctx: CaseContext, option: str, ruled_out: set[str]) -> str | None:
    """The first selectable option after `option` with no major caution of its own, when `option` has one."""
    if not major_cautions(ctx, option):
        return None
    selectable = ctx.protocol.selectable_options
    later = selectable[selectable.index(option) + 1:] if option in selectable else []
    return next((o for o in later if o not in ruled_out and not major_cautions(ctx, o)), None)


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
        """The first option a plan may use, in the profile's order, that the pharmacist has not ruled out
        (the pharmacist's suggestion when there is one); why each option above it was passed over."""
        rejected = rejected_agents(history)
        suggested = history[-1].review.suggested_agent if history else None
        claims = _criteria_claims(ctx)
        passed: list[Claim] = []
        selectable = ctx.protocol.selectable_options
        for ev in sorted(ctx.protocol.options, key=lambda ev: ev.rank):
            if ev.option in selectable and ev.option not in rejected and suggested in (None, ev.option):
                return Proposal(action="treat", agent=ev.option, rationale=claims + passed + self._why(ctx, ev, suggested)), AgentOutcome(backend=self.name)
            passed.append(self._passed_over(ctx, ev, history))
        return (
            Proposal(action="escalate", agent=None, rationale=claims + passed + [
                Claim(text="No option passes both the protocol and the pharmacist's review; a prescriber must decide.",
                      citations=ctx.rule_citation(ctx.spec.agent_policy.no_option_rule))]),
            AgentOutcome(backend=self.name),
        )

    @staticmethod
    def _passed_over(ctx: CaseContext, ev: OptionEvaluation, history: list[Round]) -> Claim:
        if ev.exclusions:  # cited to the rule, as on the report's first screen; the rule passage names the option
            return _exclusion_claim(ctx, ev.option, ev.exclusions[0]).model_copy(update={"citations": ctx.rule_citation(ev.exclusions[0].rule_id)})
        if ev.option not in ctx.protocol.selectable_options:  # allowed, unverified while a verified option remains
            return unverified_claim(ctx, ev.option)
        concern = next((c for r in reversed(history) for c in r.review.concerns if c.agent == ev.option), None)
        if concern is not None:
            return Claim(text=f"{ctx.option_name(ev.option)} was passed over in the pharmacist's review: {concern.claim.text}",
                         citations=concern.claim.citations)
        return Claim(text=f"{ctx.option_name(ev.option)} was passed over for the pharmacist's suggestion.", citations=[])

    def _why(self, ctx: CaseContext, ev: OptionEvaluation, suggested: str | None) -> list[Claim]:
        reg = ctx.protocol.regimen_for(ev.option) or ctx.profile.regimen(ev.option)
        lead = "Revised to the pharmacist's suggestion" if ev.option == suggested else f"Proposed as preference {ev.rank} in the {ctx.profile.id} order"
        claims = [Claim(
            text=f"{lead}: {ctx.option_name(ev.option)}, {plain.regimen(reg)}.",
            citations=ctx.choice_citation() + ctx.monograph_section(ev.option, "dose-and-regimen"),
        )]
        if ev.allowed and not ev.verified:
            claims.append(unverified_claim(ctx, ev.option))
        return claims

    def referral_note(self, ctx: CaseContext) -> tuple[ReferralNote, AgentOutcome]:
        p = ctx.protocol
        reasons = [Claim(text=f"{h.title} ({_words(ctx, h.detail)}).", citations=ctx.rule_citation(h.rule_id)) for h in p.rules_fired]
        wording = ctx.spec.wording
        referral = ctx.docs(wording.referral_docs)
        counselling = ctx.docs(wording.return_docs)

        def backing(text: str, pool: list[str]) -> list[str]:
            return [cid for cid in pool if supports(text, ctx.passages[cid])][:1]  # the best-placed passage is enough

        urgency = ctx.spec.referral_urgency(p)
        decision = ctx.spec.decision(p.decision)
        advice = decision.advice_same_day if urgency == "emergency_or_same_day" and decision.advice_same_day else decision.advice
        # Already told to be seen today: the warning says what to do if that fails, not "go at once".
        warn = wording.warn_same_day if urgency == "emergency_or_same_day" else wording.warn
        # Each cited to its rule: the rule passage names the options it excludes and why.
        avoid = [
            _exclusion_claim(ctx, ev.option, ex).model_copy(update={"citations": ctx.rule_citation(ex.rule_id)})
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
            return self._review_allowed(ctx, agent, history), outcome
        concerns = [
            Concern(category=_category(ctx, x.rule_id), agent=agent, rule_id=x.rule_id, claim=_exclusion_claim(ctx, agent, x))
            for x in ev.exclusions
        ]
        return self._redirect(ctx, concerns, history, agent), outcome

    def _review_allowed(self, ctx: CaseContext, agent: str, history: list[Round]) -> Review:
        """Approve with the actions, or modify when a major caution makes a later allowed option better."""
        name = ctx.option_name(agent)
        alt = better_option(ctx, agent, rejected_agents(history) | {agent})
        if alt is not None:
            majors = major_cautions(ctx, agent)
            selectable = ctx.protocol.selectable_options
            # The options between the two were passed over for their own major cautions: say so too.
            between = selectable[selectable.index(agent) + 1:selectable.index(alt)]
            concerns = [Concern(category=_caution_category(ctx), agent=o, rule_id=c.rule_id, claim=_caution_claim(ctx, c))
                        for o in [agent, *between] for c in major_cautions(ctx, o)]
            return Review(
                verdict="modify", concerns=concerns, suggested_agent=alt,
                summary=Claim(
                    text=f"Use {ctx.option_name(alt)} instead: {name} is allowed, but {majors[0].message.rstrip('.')}, "
                         f"a major caution, and {ctx.option_name(alt)} has none.",
                    citations=ctx.rule_citation(majors[0].rule_id) + ctx.monograph_section(alt, "dose-and-regimen")),
            )
        checked = [c for slug in ctx.spec.agent_policy.review_sections for c in ctx.monograph_section(agent, slug)]
        pending = ctx.protocol.checks_for(agent)
        caveat = (f" {len(pending)} entr{'y is' if len(pending) == 1 else 'ies are'} not recognised, so approval at sign-off "
                  "waits for the prescriber to check each by hand.") if pending else ""
        concerns = [_unverified_concern(ctx, agent)] if pending else []
        concerns += _caution_concerns(ctx, agent)
        cautions = len(concerns) - bool(pending)
        actions = (f" {cautions} caution{'s' if cautions != 1 else ''} below, each with the action the prescriber takes."
                   if cautions else " The medication review found no caution.")
        return Review(
            verdict="approve", concerns=concerns, suggested_agent=None,
            summary=Claim(text=f"{name} checked against {ctx.spec.wording.review_checked}: no exclusion applies.{actions}{caveat}",
                          citations=checked),
        )

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
