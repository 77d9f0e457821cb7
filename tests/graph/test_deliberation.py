"""The deliberation contract (issue 17): the doctor proposes only what the protocol allows, in the
profile's order, saying why each option above was passed over; the pharmacist approves with the
actions, modifies only on a major caution, and rejects only when nothing allowed remains. Both
backends: the rules backend directly, the LLM backend over HTTP against the scripted server."""

from __future__ import annotations

import json

import pytest
from fake_openai import Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import ALLERGIES, MEDS, RECENT, patients

from clinreason.agents.context import CaseContext
from clinreason.agents.rules import RulesDoctor, RulesPharmacist
from clinreason.assessment import assess_deterministic, validate
from clinreason.errors import InvalidInput
from clinreason.protocols.result import Caution
from clinreason.samples import load_sample

KB = "uti-cystitis/CA-ON/"
TRIM_DOSE = KB + "monograph-trimethoprim#dose-and-regimen"
FOSFO_DOSE = KB + "monograph-fosfomycin#dose-and-regimen"


def context(data: dict, **result_update) -> CaseContext:
    v = validate(data)
    result = assess_deterministic(v)
    if result_update:
        result = result.model_copy(update=result_update)
    return CaseContext(patient=v.patient, protocol=result, passages={}, spec=v.spec)


@st.composite
def eligible(draw) -> dict:
    """Patients the protocol treats (uncomplicated cystitis), with medication lists, allergies, recent
    antibiotics and G6PD status that exclude some options and not others."""
    data = load_sample("uncomplicated")
    data["age"] = draw(st.integers(16, 95))
    h = data["history"]
    h["meds"] = draw(st.lists(st.sampled_from(MEDS + ["probenecid 500 mg", "metoclopramide 10 mg"]), max_size=4, unique=True))
    h["allergies"] = draw(st.lists(st.sampled_from(ALLERGIES), max_size=2, unique=True))
    h["recent_antibiotics"] = draw(st.lists(st.sampled_from(RECENT), max_size=2, unique=True))
    h["antibiotics_last_90d"] = bool(h["recent_antibiotics"])
    h["g6pd_deficiency"] = draw(st.booleans())
    return data


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(eligible(), patients()))
def test_the_rules_doctor_never_proposes_an_option_the_protocol_excludes(data):
    try:
        ctx = context(data)
    except InvalidInput:
        return
    if ctx.spec.plan_kind(ctx.protocol) != "treat":
        return
    proposal, _ = RulesDoctor().propose(ctx, [])
    selectable = ctx.protocol.selectable_options
    # Round 1: the first option a plan may use, in the profile's order; never a staged mistake.
    assert proposal.action == "treat" and proposal.agent == selectable[0]
    # One sentence for each option ranked above it, naming it.
    above = [ev for ev in ctx.protocol.options if ev.rank < ctx.protocol.option(proposal.agent).rank]
    text = " ".join(c.text for c in proposal.rationale)
    for ev in above:
        assert ctx.option_name(ev.option) in text


def test_raas_patient_gets_fosfomycin_in_round_one_with_the_reasons_for_the_others(offline_pipeline):
    a = offline_pipeline.run(load_sample("raas-nitrofurantoin-allergy"))
    [only] = a.rounds
    assert (only.proposal.agent, only.review.verdict) == ("fosfomycin", "approve")
    why = " ".join(c.text for c in only.proposal.rationale)
    # Nitrofurantoin: the reported allergy; TMP-SMX and trimethoprim: lisinopril with spironolactone.
    assert "Nitrofurantoin is not suitable" in why and "allergy" in why.lower()
    assert "(TMP-SMX) is not suitable" in why and "Trimethoprim is not suitable" in why and "potassium" in why.lower()
    assert a.plan.option == "fosfomycin" and a.plan.decided_by == "agents"


def test_warfarin_approval_carries_the_inr_action(offline_pipeline):
    a = offline_pipeline.run(load_sample("warfarin"))
    [only] = a.rounds
    assert (only.proposal.agent, only.review.verdict) == ("trimethoprim", "approve")
    [inr] = [c for c in only.review.concerns if c.rule_id == "CA-VKA-INR"]
    assert inr.category == "caution" and "INR within 3 to 5 days" in inr.claim.text
    assert inr.claim.citations == [KB + "rules-ca-on#ca-vka-inr"]


def _major(option: str, rule_id: str = "CA-VKA-INR") -> Caution:
    return Caution(rule_id=rule_id, option=option, severity="major", message="A major caution about " + option,
                   action="Choose another allowed option.", evidence="'test'")


def test_a_major_caution_on_the_proposal_makes_the_pharmacist_modify_to_the_next_allowed_option():
    # Uncomplicated patient: nitrofurantoin first. A major caution on it (and on TMP-SMX) leaves
    # trimethoprim as the first allowed option without one: the review changes the choice, citing it.
    base = context(load_sample("uncomplicated"))
    ctx = context(load_sample("uncomplicated"), cautions=[_major("nitrofurantoin"), _major("tmp_smx")])
    assert base.protocol.selectable_options[:3] == ["nitrofurantoin", "tmp_smx", "trimethoprim"]
    proposal, _ = RulesDoctor().propose(ctx, [])
    assert proposal.agent == "nitrofurantoin"
    review, _ = RulesPharmacist().review(ctx, proposal, [])
    assert (review.verdict, review.suggested_agent) == ("modify", "trimethoprim")
    assert {(c.agent, c.rule_id, c.category) for c in review.concerns} == {
        ("nitrofurantoin", "CA-VKA-INR", "caution"), ("tmp_smx", "CA-VKA-INR", "caution")}
    assert "major caution" in review.summary.text


def test_the_doctor_follows_the_modification_and_the_pharmacist_approves():
    from clinreason.agents.models import Round

    ctx = context(load_sample("uncomplicated"), cautions=[_major("nitrofurantoin")])
    doctor, pharmacist = RulesDoctor(), RulesPharmacist()
    p1, _ = doctor.propose(ctx, [])
    r1, _ = pharmacist.review(ctx, p1, [])
    history = [Round(number=1, proposal=p1, review=r1, doctor_backend="rules", pharmacist_backend="rules")]
    p2, _ = doctor.propose(ctx, history)
    assert p2.agent == "tmp_smx"
    assert any("Nitrofurantoin was passed over in the pharmacist's review" in c.text for c in p2.rationale)
    r2, _ = pharmacist.review(ctx, p2, history)
    assert r2.verdict == "approve"


def test_major_cautions_on_every_later_option_mean_approve_with_the_actions():
    # No later option is better: the pharmacist approves the proposal and states the caution's action.
    ctx = context(load_sample("uncomplicated"), cautions=[_major(o) for o in ("nitrofurantoin", "tmp_smx", "trimethoprim", "fosfomycin")])
    proposal, _ = RulesDoctor().propose(ctx, [])
    review, _ = RulesPharmacist().review(ctx, proposal, [])
    assert review.verdict == "approve" and proposal.agent == "nitrofurantoin"
    assert [c.rule_id for c in review.concerns] == ["CA-VKA-INR"]
    assert "Choose another allowed option." in review.concerns[0].claim.text


def test_a_moderate_caution_never_changes_the_choice():
    moderate = _major("nitrofurantoin").model_copy(update={"severity": "moderate"})
    ctx = context(load_sample("uncomplicated"), cautions=[moderate])
    proposal, _ = RulesDoctor().propose(ctx, [])
    review, _ = RulesPharmacist().review(ctx, proposal, [])
    assert (proposal.agent, review.verdict) == ("nitrofurantoin", "approve")


# --- the LLM backend keeps the same contract -------------------------------------------------
def _claim(text, *cites):
    return {"text": text, "citations": list(cites)}


def _review(verdict, concerns=(), suggested=None):
    return {"verdict": verdict, "concerns": list(concerns), "suggested_agent": suggested,
            "summary": _claim("Checked against the whole medication list.")}


@pytest.fixture
def scripted(llm_pipeline, fake_openai):
    def go(sample, doctor, pharmacist):
        replies = {"doctor-model": doctor, "pharmacist-model": pharmacist}
        fake_openai.handler = lambda req: replies[req["model"]]
        pipe = llm_pipeline()
        return pipe.run(load_sample(sample))
    return go


def trimethoprim_proposal():
    return Reply.json({"action": "treat", "agent": "trimethoprim",
                       "rationale": [_claim("Trimethoprim 200 mg twice daily for 3 days is the first allowed option.", TRIM_DOSE)]})


def test_llm_pharmacist_may_not_modify_on_a_moderate_caution(scripted):
    # Warfarin with trimethoprim is a moderate caution (check the INR): not a reason to change the option.
    concern = {"category": "caution", "agent": "trimethoprim", "rule_id": "CA-VKA-INR",
               "claim": _claim("Warfarin with trimethoprim can raise the INR.", KB + "rules-ca-on#ca-vka-inr")}
    a = scripted("warfarin", trimethoprim_proposal(), Reply.json(_review("modify", [concern], "fosfomycin")))
    assert a.plan.option == "trimethoprim"
    assert any("modified 'trimethoprim', which has no major caution" in v for v in a.audit["vetoes"])
    assert a.rounds[0].pharmacist_backend == "rules" and a.rounds[0].review.verdict == "approve"


def test_llm_pharmacist_may_not_reject_an_allowed_option(scripted):
    a = scripted("warfarin", trimethoprim_proposal(), Reply.json(_review("reject")))
    assert a.plan.option == "trimethoprim"
    assert any("rejected 'trimethoprim', which the protocol allows" in v for v in a.audit["vetoes"])


def test_llm_prompts_carry_the_medication_review(scripted, fake_openai):
    concern = {"category": "caution", "agent": "trimethoprim", "rule_id": "CA-VKA-INR",
               "claim": _claim("Check the INR within 3 to 5 days and tell the anticoagulant prescriber.", KB + "rules-ca-on#ca-vka-inr")}
    a = scripted("warfarin", trimethoprim_proposal(), Reply.json(_review("approve", [concern])))
    assert a.rounds[0].pharmacist_backend == "llm:pharmacist-model" and a.plan.option == "trimethoprim"
    pharmacist = [r for r in fake_openai.requests if r.model == "pharmacist-model"][0]
    user = json.dumps(pharmacist.messages)
    assert "CAUTION (moderate, CA-VKA-INR)" in user and "INR within 3 to 5 days" in user


def test_glyburide_patient_review_changes_tmp_smx_to_trimethoprim(offline_pipeline):
    # Nitrofurantoin is excluded by the allergy; TMP-SMX is allowed, but with glyburide it is a major
    # caution (the sulfamethoxazole raises the sulfonylurea's level: hypoglycaemia), and trimethoprim,
    # next in the CA-ON order, has none: the pharmacist modifies, citing the caution, and the doctor follows.
    data = load_sample("uncomplicated")
    data["history"]["allergies"] = ["Macrobid (hives)"]
    data["history"]["meds"] = ["glyburide 5 mg BID"]
    a = offline_pipeline.run(data)
    first, second = a.rounds
    assert (first.proposal.agent, first.review.verdict, first.review.suggested_agent) == ("tmp_smx", "modify", "trimethoprim")
    [major] = [c for c in first.review.concerns if c.rule_id == "CA-SULFONYLUREA-TMP-SMX"]
    assert major.category == "caution" and major.claim.citations == [KB + "rules-ca-on#ca-sulfonylurea-tmp-smx"]
    assert (second.proposal.agent, second.review.verdict) == ("trimethoprim", "approve")
    assert any("passed over in the pharmacist's review" in c.text for c in second.proposal.rationale)
    assert a.plan.option == "trimethoprim" and a.safety.passed
    # The deterministic result is unchanged by the review: same decision, TMP-SMX still allowed.
    assert a.decision == "recommend_treatment" and "tmp_smx" in a.protocol.allowed_options
