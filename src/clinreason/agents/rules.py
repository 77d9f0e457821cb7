"""Rules backend (offline default): the doctor and pharmacist as deterministic reasoners.

The split mirrors practice. The doctor assesses the patient (allergies, age,
kidney function) and proposes the most preferred agent that passes; the
pharmacist reviews the medicines against the formulary (interactions, recent
antibiotic use, G6PD) and re-checks everything, then approves, proposes
another agent, or rejects. Every sentence cites retrieved passages.
"""

from __future__ import annotations

from clinreason.agents.context import CaseContext
from clinreason.agents.models import (
    URGENCY_RANK,
    AgentOutcome,
    Claim,
    Concern,
    Proposal,
    ReferralNote,
    Review,
    Round,
    Urgency,
)
from clinreason.knowledge.support import supports
from clinreason.protocols.profile import rule_catalog
from clinreason.protocols.result import (
    AgentEvaluation,
    Decision,
    Exclusion,
    ProtocolResult,
)

DOCTOR_CHECKS = frozenset({"EX-ALLERGY", "EX-AGE", "EX-RENAL"})
CATEGORY = {
    "EX-ALLERGY": "allergy", "EX-RECENT-USE": "recent_use", "EX-RENAL": "renal",
    "EX-G6PD": "g6pd", "EX-AGE": "age",
}
URGENCY: dict[Decision, Urgency] = {  # each decision's usual timeframe; referral_urgency raises it
    Decision.refer_urgent: "emergency_or_same_day",
    Decision.refer_complicated: "within_24_48h",
    Decision.refer_recurrence: "within_24_48h",
    Decision.refer_no_safe_option: "within_24_48h",
    Decision.no_antibiotics: "none",
    Decision.recommend_treatment: "none",
}


def referral_urgency(p: ProtocolResult) -> Urgency:
    """How soon the patient must be seen: the decision's timeframe, or same day when a
    rule that fired says so (rules.toml `same_day`: new confusion, delirium, pregnancy).

    Deterministic, so an LLM referral note may raise it but never lower it."""
    base = URGENCY[p.decision]
    catalog = rule_catalog()
    if base == "within_24_48h" and any(catalog[h.rule_id].same_day for h in p.rules_fired):
        return "emergency_or_same_day"
    return base


def urgency_shortfall(urgency: Urgency, p: ProtocolResult) -> Urgency | None:
    """The urgency the protocol requires when `urgency` is later than it, else None."""
    need = referral_urgency(p)
    return need if URGENCY_RANK[urgency] < URGENCY_RANK[need] else None


def _criteria_claims(ctx: CaseContext) -> list[Claim]:
    return [
        Claim(text=f"{hit.title} ({hit.detail}).", citations=ctx.rule_citation(hit.rule_id))
        for hit in ctx.protocol.rules_fired
        if hit.rule_id.startswith("SX-")
    ]


def _exclusion_claim(ctx: CaseContext, agent: str, ex: Exclusion) -> Claim:
    return Claim(text=f"{ctx.agent_name(agent)} is not suitable: {ex.reason} Evidence: {ex.evidence}.", citations=ctx.exclusion_citations(agent, ex))


def unverified_claim(ctx: CaseContext, agent: str) -> Claim:
    """Why an allowed agent cannot be verified: the unrecognised entries that could exclude it."""
    entries = "; ".join(f"{e.entry!r} ({e.field})" for e in ctx.protocol.checks_for(agent))
    name = ctx.agent_name(agent)
    if agent in ctx.protocol.selectable_agents:
        text = (f"{name} cannot be verified: {entries} not recognised by the formulary, and no verified agent remains, "
                "so it is recommended with a blocking check the prescriber must acknowledge at sign-off.")
    else:
        text = f"{name} cannot be verified: {entries} not recognised by the formulary, while a verified agent remains."
    return Claim(text=text, citations=ctx.rule_citation("TX-UNVERIFIED"))


def _unverified_concern(ctx: CaseContext, agent: str) -> Concern:
    return Concern(category="unverified", agent=agent, rule_id="TX-UNVERIFIED", claim=unverified_claim(ctx, agent))


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
        order = sorted(ctx.protocol.agents, key=lambda ev: (ev.agent != suggested, ev.rank))
        selectable = ctx.protocol.selectable_agents
        for ev in order:
            own = [x for x in ev.exclusions if x.rule_id in DOCTOR_CHECKS]
            if own:
                skipped.append(_exclusion_claim(ctx, ev.agent, own[0]))
                continue
            if ev.allowed and ev.agent not in selectable:  # unverified while a verified agent remains
                skipped.append(unverified_claim(ctx, ev.agent))
                continue
            if ev.agent in rejected:
                skipped.append(Claim(text=f"{ctx.agent_name(ev.agent)} was ruled out in the pharmacist's review.", citations=[]))
                continue
            return Proposal(action="treat", agent=ev.agent, rationale=claims + skipped + self._why(ctx, ev, suggested)), AgentOutcome(backend=self.name)
        return (
            Proposal(action="escalate", agent=None, rationale=claims + skipped + [
                Claim(text="No agent passes both the patient assessment and the pharmacist's review; a prescriber must decide.",
                      citations=ctx.rule_citation("TX-NO-SAFE-OPTION"))]),
            AgentOutcome(backend=self.name),
        )

    def _why(self, ctx: CaseContext, ev: AgentEvaluation, suggested: str | None) -> list[Claim]:
        reg = ctx.profile.regimen(ev.agent)
        lead = "Revised to the pharmacist's suggestion" if ev.agent == suggested else f"Proposed as preference {ev.rank} in the {ctx.profile.id} order"
        claims = [Claim(
            text=f"{lead}: {ctx.agent_name(ev.agent)}, {reg.text}.",
            citations=ctx.rule_citation("TX-FIRST-SAFE-AGENT") + ctx.monograph_section(ev.agent, "dose-and-regimen"),
        )]
        if ev.allowed and not ev.verified:
            claims.append(unverified_claim(ctx, ev.agent))
        return claims

    def referral_note(self, ctx: CaseContext) -> tuple[ReferralNote, AgentOutcome]:
        p = ctx.protocol
        reasons = [Claim(text=f"{h.title} ({h.detail}).", citations=ctx.rule_citation(h.rule_id)) for h in p.rules_fired]
        referral = [cid for cid in ctx.passages if cid.startswith("policy-referral#")]
        counselling = [cid for cid in ctx.passages if cid.startswith("policy-counselling#when-to-return")]

        def backing(text: str, pool: list[str]) -> list[str]:
            return [cid for cid in pool if supports(text, ctx.passages[cid])][:2]

        urgency = referral_urgency(p)
        advice = {
            Decision.refer_urgent: "Explain that the symptoms may mean a kidney or blood infection and that they need to be seen by a physician, urgent care or an emergency department today; no antibiotic is started at the pharmacy.",
            Decision.refer_complicated: (
                "Explain that these findings need a medical assessment today: a physician or nurse practitioner should see them the same day, or urgent care if none is available today."
                if urgency == "emergency_or_same_day" else
                "Explain that the infection may need examination, a urine culture and a tailored antibiotic, so a physician or nurse practitioner should see them within 24 to 48 hours, sooner if they feel worse."),
            Decision.refer_recurrence: "Explain that repeated or returning infections need a urine culture and a review by a physician or nurse practitioner, within 24 to 48 hours.",
            Decision.refer_no_safe_option: "Explain that none of the antibiotics a pharmacist may prescribe is safe for them, and arrange assessment by a physician or nurse practitioner within 24 to 48 hours.",
            Decision.no_antibiotics: "Explain that an antibiotic is not indicated now; offer self-care advice and ask them to return if urinary symptoms start or worsen.",
        }[p.decision]
        warn = "Go to an emergency department at once for fever, rigors, flank pain, vomiting or feeling very unwell."
        avoid = [
            _exclusion_claim(ctx, ev.agent, ex)
            for ev in p.agents
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
        selectable = ctx.protocol.selectable_agents
        if proposal.action == "escalate":
            if selectable:
                alt = selectable[0]
                return Review(
                    verdict="modify", concerns=[], suggested_agent=alt,
                    summary=Claim(text=f"{ctx.agent_name(alt)} has no exclusion for this patient in the formulary check; escalation is not needed.",
                                  citations=ctx.monograph_section(alt, "dose-and-regimen")),
                ), outcome
            return Review(verdict="approve", concerns=[], suggested_agent=None,
                          summary=Claim(text="Agreed: every agent is excluded for this patient, so a prescriber must decide.",
                                        citations=ctx.rule_citation("TX-NO-SAFE-OPTION"))), outcome
        agent = proposal.agent or ""
        ev = ctx.protocol.find_agent(agent)
        if ev is None:
            concern = Concern(category="other", agent=agent, rule_id=None,
                              claim=Claim(text=f"{agent!r} is not one of the protocol's agents for uncomplicated cystitis.",
                                          citations=ctx.rule_citation("TX-FIRST-SAFE-AGENT")))
            return self._redirect(ctx, [concern], history, agent), outcome
        if ev.allowed and agent not in selectable:  # unverified while a verified agent remains
            return self._redirect(ctx, [_unverified_concern(ctx, agent)], history, agent), outcome
        if ev.allowed:
            checked = ctx.monograph_section(agent, "renal-function") + ctx.monograph_section(agent, "allergy-and-recent-use")
            pending = ctx.protocol.checks_for(agent)
            caveat = (f" {len(pending)} entr{'y is' if len(pending) == 1 else 'ies are'} not recognised, so approval at sign-off "
                      "waits for the prescriber to check each by hand.") if pending else ""
            return Review(
                verdict="approve", concerns=[_unverified_concern(ctx, agent)] if pending else [], suggested_agent=None,
                summary=Claim(
                    text=f"{ctx.agent_name(agent)} checked against the medication list, allergies, kidney function, age, recent antibiotics and G6PD status: no exclusion applies.{caveat}",
                    citations=checked,
                ),
            ), outcome
        concerns = [
            Concern(category=CATEGORY.get(x.rule_id, "interaction"), agent=agent, rule_id=x.rule_id, claim=_exclusion_claim(ctx, agent, x))
            for x in ev.exclusions
        ]
        return self._redirect(ctx, concerns, history, agent), outcome

    def _redirect(self, ctx: CaseContext, concerns: list[Concern], history: list[Round], agent: str) -> Review:
        ruled_out = rejected_agents(history) | {agent}
        # Concerns about the agents the doctor might turn to next, so the doctor
        # does not have to find each one the hard way.
        for ev in ctx.protocol.agents:
            if ev.agent not in ruled_out and not ev.allowed:
                x = ev.exclusions[0]
                concerns.append(Concern(category=CATEGORY.get(x.rule_id, "interaction"), agent=ev.agent, rule_id=x.rule_id, claim=_exclusion_claim(ctx, ev.agent, x)))
        options = ([a for a in ctx.protocol.selectable_agents if a not in ruled_out]
                   or [a for a in ctx.protocol.allowed_agents if a not in ruled_out])
        if options:
            alt = options[0]
            return Review(
                verdict="modify", concerns=concerns, suggested_agent=alt,
                summary=Claim(text=f"Use {ctx.agent_name(alt)} instead: it has no exclusion for this patient.",
                              citations=ctx.monograph_section(alt, "dose-and-regimen")),
            )
        return Review(verdict="reject", concerns=concerns, suggested_agent=None,
                      summary=Claim(text="No remaining agent is safe for this patient; refer to a prescriber.",
                                    citations=ctx.rule_citation("TX-NO-SAFE-OPTION")))
