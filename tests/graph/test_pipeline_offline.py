"""The full offline pipeline (rules backend) on the sample patients."""

from __future__ import annotations

import re

import pytest
from patients import make_patient

from clinreason.samples import load_sample


def run(pipeline, name):
    return pipeline.run(load_sample(name))


def test_raas_patient_is_proposed_fosfomycin_and_approved(offline_pipeline):
    a = run(offline_pipeline, "raas-nitrofurantoin-allergy")
    assert a.decision == "recommend_treatment" and a.status == "awaiting_signoff"
    # The doctor proposes the first option the protocol allows (no staged mistake for the pharmacist):
    # nitrofurantoin is excluded by the allergy, TMP-SMX and trimethoprim by lisinopril + spironolactone.
    [only] = a.rounds
    assert (only.proposal.agent, only.review.verdict) == ("fosfomycin", "approve")
    assert a.plan.option == "fosfomycin" and a.recommendation.dose == "3 g"
    assert a.safety.passed


def test_uncomplicated_patient_agrees_in_one_round(offline_pipeline):
    a = run(offline_pipeline, "uncomplicated")
    assert len(a.rounds) == 1 and a.rounds[0].review.verdict == "approve"
    assert a.recommendation.agent == "nitrofurantoin" and a.recommendation.duration == "5 days"


@pytest.mark.parametrize(("sample", "agent"), [("warfarin", "trimethoprim"), ("methotrexate", "fosfomycin"),
                                                ("g6pd", "trimethoprim"), ("dofetilide", "fosfomycin"),
                                                ("recent-septra", "fosfomycin"), ("thiazide-older-adult", "trimethoprim")])
def test_interaction_samples_reach_the_safe_agent(offline_pipeline, sample, agent):
    a = run(offline_pipeline, sample)
    assert a.plan.option == agent
    assert a.plan.option in a.protocol.allowed_options


@pytest.mark.parametrize(("sample", "urgency"), [("red-flags-older-adult", "emergency_or_same_day"), ("male", "within_24_48h"),
                                                  ("pregnant", "emergency_or_same_day"), ("catheter", "within_24_48h"),
                                                  ("recurrent", "within_24_48h"), ("no-safe-option", "within_24_48h"),
                                                  ("criteria-not-met", "none")])
def test_referrals_skip_the_loop_and_write_a_cited_note(offline_pipeline, sample, urgency):
    a = run(offline_pipeline, sample)
    assert a.rounds == [] and a.status == "final" and a.recommendation is None
    assert a.referral.urgency == urgency
    assert all(c.citations for c in a.referral.reasons)


@pytest.mark.parametrize("finding", ["confusion", "delirium"])
def test_new_confusion_or_delirium_is_a_same_day_referral(offline_pipeline, finding):
    # Not a red flag (no fever), so the decision is refer_complicated, but new
    # confusion can be the first sign of sepsis in an older adult: seen today.
    a = offline_pipeline.run(make_patient(age=84, symptoms={finding: True, "frequency": True}))
    assert a.decision == "refer_complicated"
    assert {h.rule_id for h in a.protocol.rules_fired} >= {"CF-CONFUSION" if finding == "confusion" else "CF-DELIRIUM"}
    assert a.referral.urgency == "emergency_or_same_day"
    assert "same day" in a.report_markdown and "within 24 to 48 hours" not in a.report_markdown


def test_no_safe_option_note_lists_each_agent_to_avoid(offline_pipeline):
    a = run(offline_pipeline, "no-safe-option")
    avoided = " ".join(c.text for c in a.referral.avoid_agents)
    for name in ("Nitrofurantoin", "TMP-SMX", "Trimethoprim is", "Fosfomycin"):
        assert name in avoided
    assert "ramipril" in avoided.lower()


def test_every_reference_resolves_and_every_marker_has_a_reference(offline_pipeline):
    a = run(offline_pipeline, "raas-nitrofurantoin-allergy")
    md = a.report_markdown
    body, refs = md.split("## References", 1)
    used = {int(n) for n in re.findall(r"\[(\d+)\]", body)}
    listed = {c.n for c in a.citations}
    assert used == listed == set(range(1, len(listed) + 1))
    for c in a.citations:  # each under its document's line, which names the document
        doc, _ = c.chunk_id.split("#", 1)
        assert c.chunk_id in a.evidence and f"`{doc.rsplit('/', 1)[1]}`" in refs and f"[{c.n}] " in refs
    assert a.audit["citations"] == {"cited": a.audit["citations"]["cited"], "unresolved": 0, "unsupported": 0}


def test_report_sections_and_no_identifiers(offline_pipeline):
    data = load_sample("warfarin")
    a = offline_pipeline.run(data)
    md = a.report_markdown
    headings = ["## Summary", "## Patient", "## Why this decision", "## Plan", "## Medication review", "## Counselling",
                "## Pharmacist review", "## Deliberation", "## Follow-up and red flags", "## Prescriber sign-off",
                "## References", "## Audit record"]
    assert [h for h in re.findall(r"^## .*$", md, re.M)] == [h.split(" (")[0] if h == "## Counselling" else h for h in headings] or \
        all(h in md for h in headings)
    assert md.index("## Summary") < md.index("## Patient") < md.index("## References")
    summary = md.split("## Patient")[0]
    # First screen: the plan, the INR action, and TMP-SMX excluded for warfarin, nitrofurantoin for the allergy.
    assert "**Plan:** Trimethoprim" in summary and "INR within 3 to 5 days" in summary
    assert "- Trimethoprim-sulfamethoxazole (TMP-SMX): " in summary and "Coumadin" in summary
    assert "- Nitrofurantoin: " in summary
    assert "Awaiting sign-off" in md


def test_audit_record_makes_the_decision_reproducible(offline_pipeline):
    a = run(offline_pipeline, "warfarin")
    audit = a.audit
    for key in ("input_hash", "protocol", "profile", "kb_version", "formulary_version", "embedding_model",
                "doctor", "pharmacist", "rounds", "llm_fallbacks", "citations"):
        assert key in audit
    again = run(offline_pipeline, "warfarin")
    assert again.audit["input_hash"] == audit["input_hash"] and again.id != a.id
    assert again.plan == a.plan and [r.model_dump() for r in again.rounds] == [r.model_dump() for r in a.rounds]


def test_round_cap_escalates_when_agents_cannot_agree(kb_index, monkeypatch):
    from clinreason.agents import rules
    from clinreason.config import Settings
    from clinreason.pipeline import Pipeline

    # A major caution on the first option makes the pharmacist modify; with one round there is no second.
    monkeypatch.setattr(rules, "better_option", lambda ctx, option, ruled_out: "tmp_smx" if option == "nitrofurantoin" else None)
    monkeypatch.setattr(rules, "major_cautions", lambda ctx, option: [c for c in ctx.protocol.cautions][:1] or [
        rules.Caution(rule_id="TX-FIRST-SAFE-AGENT", option=option, severity="major", message="test", action="test", evidence="test")])
    a = Pipeline(Settings(max_rounds=1)).run(load_sample("uncomplicated"))
    assert len(a.rounds) == 1 and a.rounds[0].review.verdict == "modify"
    assert a.plan.action == "escalate" and a.recommendation is None
    assert a.status == "awaiting_signoff" and "did not agree within 1 round" in a.plan.reason


def test_stored_assessment_reads_back(offline_pipeline):
    a = run(offline_pipeline, "uncomplicated")
    assert offline_pipeline.get(a.id) == a
