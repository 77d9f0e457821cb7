"""Property: whatever the agents say, the final agent is one the protocol allows."""

from __future__ import annotations

import random

from fake_openai import Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from patients import uti_spec
from strategies import eligible_patients, patients

from clinreason.agents.models import URGENCY_RANK
from clinreason.assessment import assess

# Findings that must be seen the same day even when they are not red flags.
SAME_DAY_FINDINGS = {"CF-CONFUSION", "CF-DELIRIUM", "CF-PREGNANT"}
URGENCIES = ["emergency_or_same_day", "within_24_48h", "routine", "none"]

CANDIDATES = ["nitrofurantoin", "tmp_smx", "trimethoprim", "fosfomycin", "ciprofloxacin", "amoxicillin", None]
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _check(a, p):
    deterministic = assess(p, mode="deterministic")
    assert a.decision == deterministic.decision  # agents never change the decision
    if a.plan.action == "treat":
        assert a.plan.option in deterministic.protocol.allowed_options
        assert a.recommendation == deterministic.protocol.recommendation.model_copy(update={"agent": a.plan.option}) or a.recommendation.agent == a.plan.option
    else:
        assert a.recommendation is None
    assert a.status == ("awaiting_signoff" if a.plan.action in ("treat", "escalate") else "final")


@PROPERTY
@given(st.one_of(patients(), eligible_patients()))
def test_rules_backend_final_agent_is_allowed(offline_pipeline, p):
    _check(offline_pipeline.run(p), p)


@PROPERTY
@given(eligible_patients(), st.integers(0, 2**32 - 1))
def test_hostile_llm_final_agent_is_allowed(llm_pipeline, fake_openai, p, seed):
    rnd = random.Random(seed)

    def hostile(req):
        agent = rnd.choice(CANDIDATES)
        if req["model"] == "doctor-model":
            return Reply.json({"action": "treat" if agent else "escalate", "agent": agent,
                               "rationale": [{"text": f"Use {agent}.", "citations": ["made-up#chunk"]}]})
        verdict = rnd.choice(["approve", "modify", "reject"])
        return Reply.json({"verdict": verdict, "concerns": [], "suggested_agent": agent if verdict == "modify" else None,
                           "summary": {"text": "ok", "citations": []}})

    fake_openai.reset()
    fake_openai.handler = hostile
    a = llm_pipeline().run(p)
    _check(a, p)


def _check_urgency(a):
    if a.referral is None:
        return
    assert URGENCY_RANK[a.referral.urgency] >= URGENCY_RANK[uti_spec().referral_urgency(a.protocol)]
    fired = {h.rule_id for h in a.protocol.rules_fired}
    if a.decision == "refer_urgent" or (a.decision == "refer_complicated" and fired & SAME_DAY_FINDINGS):
        assert a.referral.urgency == "emergency_or_same_day", fired
    if a.decision.startswith("refer_"):
        assert a.referral.urgency in ("emergency_or_same_day", "within_24_48h")


@PROPERTY
@given(patients())
def test_rules_backend_referral_urgency_is_never_too_late(offline_pipeline, p):
    _check_urgency(offline_pipeline.run(p))


@PROPERTY
@given(patients(), st.sampled_from(URGENCIES))
def test_hostile_llm_cannot_make_a_referral_less_urgent(llm_pipeline, fake_openai, p, urgency):
    fake_openai.reset()
    fake_openai.handler = lambda req: Reply.json({"urgency": urgency, "reasons": [], "patient_advice": [], "avoid_agents": []})
    _check_urgency(llm_pipeline().run(p))
