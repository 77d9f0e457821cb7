"""The safety gate on its own: deterministic re-check and veto."""

from __future__ import annotations

from patients import make_patient

from clinreason.agents.models import Claim, Proposal, ReferralNote, Review
from clinreason.assessment import assess_deterministic, validate
from clinreason.graph.safety import safety_gate


def _case(**changes):
    patient = validate(make_patient(**changes))
    return patient, assess_deterministic(patient)


def _approve():
    return Review(verdict="approve", concerns=[], suggested_agent=None, summary=Claim(text="ok", citations=[]))


def test_excluded_agent_is_vetoed_and_replaced_by_the_protocol_choice():
    patient, protocol = _case(history={"meds": ["warfarin 5 mg"]})
    gate = safety_gate(patient, protocol, Proposal(action="treat", agent="tmp_smx", rationale=[]), _approve(), 1, 3)
    assert not gate.passed and "EX-WARFARIN" in gate.vetoes[0]
    assert gate.plan.option == "nitrofurantoin" and gate.plan.decided_by == "protocol"


def test_tampered_protocol_result_is_replaced_by_a_fresh_evaluation():
    patient, protocol = _case(history={"meds": ["warfarin 5 mg"]})
    forged = protocol.model_copy(update={"options": [ev.model_copy(update={"exclusions": []}) for ev in protocol.options]})
    gate = safety_gate(patient, forged, Proposal(action="treat", agent="tmp_smx", rationale=[]), _approve(), 1, 3)
    assert not gate.passed and gate.plan.option != "tmp_smx"
    assert any("did not match" in v for v in gate.vetoes)


def test_agents_cannot_turn_a_referral_into_treatment():
    patient, protocol = _case(red_flags={"fever": True})
    gate = safety_gate(patient, protocol, Proposal(action="treat", agent="nitrofurantoin", rationale=[]), _approve(), 1, 3)
    assert gate.plan.action == "refer" and not gate.passed


def test_no_agreement_escalates():
    patient, protocol = _case()
    review = Review(verdict="modify", concerns=[], suggested_agent="fosfomycin", summary=Claim(text="x", citations=[]))
    gate = safety_gate(patient, protocol, Proposal(action="treat", agent="nitrofurantoin", rationale=[]), review, 3, 3)
    assert gate.plan.action == "escalate" and gate.passed


def _note(urgency):
    return ReferralNote(urgency=urgency, reasons=[], patient_advice=[], avoid_agents=[])


def test_a_referral_note_too_late_for_the_rechecked_protocol_is_raised():
    # A stale or tampered note: fever needs the same day, new confusion too.
    for changes in ({"red_flags": {"fever": True}}, {"age": 84, "symptoms": {"confusion": True}}):
        patient, protocol = _case(**changes)
        gate = safety_gate(patient, protocol, None, None, 0, 3, _note("within_24_48h"))
        assert gate.referral.urgency == "emergency_or_same_day" and not gate.passed
        assert "raised to 'emergency_or_same_day'" in gate.vetoes[0]
    patient, protocol = _case(sex="male")  # 24 to 48 hours is right for a man with cystitis
    gate = safety_gate(patient, protocol, None, None, 0, 3, _note("within_24_48h"))
    assert gate.passed and gate.referral.urgency == "within_24_48h"
