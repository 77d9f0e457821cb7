"""Lyme prophylaxis in full mode: retrieval, the doctor-pharmacist loop with its single option,
the safety gate, the cited report in the protocol's own words, and sign-off; offline and with the
LLM backend against the scripted server."""

from __future__ import annotations

import json

import pytest
from fake_openai import Reply

from clinreason.pipeline import UnacknowledgedChecks
from clinreason.samples import load_sample

KB = "lyme-pep/CA-ON/"
DOSE = KB + "monograph-doxycycline#dose-and-regimen"
RULE_ADULT = KB + "rules-ca-on#tx-prophylaxis-adult"
UTI_WORDS = ("cystitis", "urinary", "UTI", "x 3 days", "x 5 days", "nitrofurantoin", "antibiotic course")


def test_warfarin_patient_gets_the_dose_and_the_inr_action(offline_pipeline) -> None:
    a = offline_pipeline.run(load_sample("lyme-warfarin-caution"))
    assert a.decision == "recommend_prophylaxis" and a.status == "awaiting_signoff"
    assert a.plan.action == "treat" and a.plan.option == "doxycycline" and a.plan.regimen.dose == "200 mg"
    md = a.report_markdown
    assert md.startswith("# Lyme disease prophylaxis assessment (CA-ON)")
    # On the first screen, among the actions: tell the anticoagulation prescriber so the INR can be checked.
    summary = md.split("## Summary")[1].split("\n## ")[0]
    assert "**Actions:**" in summary and "INR" in summary.split("**Actions:**")[1]
    assert "## Medication review" in md and "INR" in md.split("## Medication review")[1].split("\n## ")[0]
    # The pharmacist's review carries the caution and its action, cited to its rule.
    review = a.rounds[-1].review
    assert review.verdict == "approve"
    warfarin = [c for c in review.concerns if c.rule_id == "CA-WARFARIN"]
    assert warfarin and "anticoagulant" in warfarin[0].claim.text and warfarin[0].claim.citations == [KB + "rules-ca-on#ca-warfarin"]
    assert all(w not in md for w in UTI_WORDS)
    assert all(c.chunk_id.startswith(KB) for c in a.citations) and a.audit["citations"]["unresolved"] == 0


def test_child_under_the_us_profile_gets_its_weight_based_dose(offline_pipeline) -> None:
    a = offline_pipeline.run(load_sample("lyme-child-weight-dosing-us"))
    assert a.protocol.profile_id == "US-IDSA" and a.plan.regimen.dose == "100 mg"
    assert "**Plan:** Doxycycline 100 mg by mouth, as a single dose." in a.report_markdown
    assert "4.4 mg/kg x 23 kg = 101.2 mg" in a.report_markdown
    assert all(c.chunk_id.startswith("lyme-pep/US-IDSA/") for c in a.citations)


def test_stiff_neck_is_a_same_day_referral_note(offline_pipeline) -> None:
    a = offline_pipeline.run(load_sample("lyme-stiff-neck"))
    assert a.decision == "refer_symptomatic" and a.plan.action == "refer" and a.status == "final"
    assert a.referral.urgency == "emergency_or_same_day" and a.rounds == []
    assert "**Plan:** refer the same day" in a.report_markdown and "Refer the same day" in a.report_markdown.split("## Referral")[1]
    assert all(w not in a.report_markdown for w in UTI_WORDS)


def test_no_prophylaxis_says_watch_for_30_days(offline_pipeline) -> None:
    a = offline_pipeline.run(load_sample("lyme-us-36h-not-met"))
    assert a.plan.action == "no_treatment" and "**Plan:** no prophylaxis now" in a.report_markdown
    assert "## Advice" in a.report_markdown and "## Referral" not in a.report_markdown
    assert "30 days" in a.report_markdown and "Not required for this decision" in a.report_markdown


def test_contraindicated_patient_is_referred_with_the_reason(offline_pipeline) -> None:
    a = offline_pipeline.run(load_sample("lyme-isotretinoin"))
    assert a.decision == "refer_contraindicated" and a.plan.action == "refer"
    assert any("intracranial" in c.text for c in a.referral.avoid_agents)


def test_an_unrecognised_medication_blocks_approval_until_acknowledged(offline_pipeline) -> None:
    a = offline_pipeline.run(load_sample("lyme-unrecognised-medication"))
    assert [c.field for c in a.plan.blocking_checks] == ["history.meds[0]"] and "**Blocking checks:**" in a.report_markdown.split("## Patient")[0]
    with pytest.raises(UnacknowledgedChecks):
        offline_pipeline.signoff(a.id, "approve", "dr-lee")
    signed = offline_pipeline.signoff(a.id, "approve", "dr-lee", acknowledged=["history.meds[0]"])
    assert signed.status == "final" and signed.signoff.acknowledged == ["Xyzalonex 10 mg"]


def test_signoff_approves_and_the_record_survives(offline_pipeline) -> None:
    a = offline_pipeline.run(load_sample("lyme-breastfeeding"))
    signed = offline_pipeline.signoff(a.id, "approve", "dr-ng", comment="single dose; infant counselling given")
    assert signed.status == "final" and signed.plan.option == "doxycycline"
    again = offline_pipeline.get(a.id)
    assert again.signoff.prescriber_id == "dr-ng" and "Breastfeeding" in again.report_markdown


# --- LLM backend --------------------------------------------------------------------------------------
def proposal(option="doxycycline", text="Doxycycline 200 mg once is the protocol's prophylaxis for this bite."):
    return {"action": "treat", "agent": option, "rationale": [{"text": text, "citations": [RULE_ADULT, DOSE]}]}


def approve(text="Doxycycline checked against the medication list and allergies: no exclusion applies."):
    return {"verdict": "approve", "concerns": [], "suggested_agent": None, "summary": {"text": text, "citations": [DOSE]}}


def test_llm_doctor_and_pharmacist_agree_on_doxycycline(llm_pipeline, fake_openai) -> None:
    fake_openai.script(Reply.json(proposal()), model="doctor-model")
    fake_openai.script(Reply.json(approve()), model="pharmacist-model")
    a = llm_pipeline().run(load_sample("lyme-adult-prophylaxis"))
    assert a.plan.option == "doxycycline" and a.plan.decided_by == "agents"
    assert (a.rounds[0].doctor_backend, a.rounds[0].pharmacist_backend) == ("llm:doctor-model", "llm:pharmacist-model")
    doctor_prompt = json.dumps(fake_openai.requests_for("doctor-model")[0].messages)
    assert "tick bite" in doctor_prompt and "cystitis" not in doctor_prompt and f"[{DOSE}]" in doctor_prompt
    assert a.audit["llm_fallbacks"] == [] and a.audit["protocol"].startswith("lyme-pep")


def test_llm_proposing_another_antibiotic_is_vetoed(llm_pipeline, fake_openai) -> None:
    fake_openai.script(Reply.json(proposal("amoxicillin", "Amoxicillin is an option.")), model="doctor-model")
    fake_openai.script(Reply.json(approve()), model="pharmacist-model")
    a = llm_pipeline().run(load_sample("lyme-adult-prophylaxis"))
    assert a.plan.option == "doxycycline"
    assert a.rounds[0].doctor_backend == "rules" and "amoxicillin" in a.audit["llm_fallbacks"][0]


def test_llm_cannot_make_a_stiff_neck_less_urgent(llm_pipeline, fake_openai) -> None:
    note = {"urgency": "within_24_48h", "reasons": [{"text": "Headache and stiff neck after a bite.", "citations": []}],
            "patient_advice": [], "avoid_agents": []}
    fake_openai.script(Reply.json(note), model="doctor-model")
    a = llm_pipeline().run(load_sample("lyme-stiff-neck"))
    assert a.referral.urgency == "emergency_or_same_day"
    assert any("urgency" in v for v in a.audit["vetoes"]) or a.audit["llm_fallbacks"]


def test_llm_pharmacist_approving_a_retinoid_patient_changes_nothing(llm_pipeline, fake_openai) -> None:
    # A contraindicated patient never reaches the loop: the doctor writes a referral note, and a
    # hostile note that names doxycycline as something to give is vetoed.
    note = {"urgency": "within_24_48h", "reasons": [{"text": "Give doxycycline 200 mg now.", "citations": []}],
            "patient_advice": [], "avoid_agents": []}
    fake_openai.script(Reply.json(note), model="doctor-model")
    a = llm_pipeline().run(load_sample("lyme-isotretinoin"))
    assert a.plan.action == "refer" and a.recommendation is None
    assert a.audit["llm_fallbacks"] and "doxycycline" in a.audit["llm_fallbacks"][0]
