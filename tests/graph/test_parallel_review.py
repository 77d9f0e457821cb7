"""Round 1 with the LLM backend: the pharmacist reviews the first allowed option while the doctor answers.

Proven over HTTP with the scripted server: the doctor's reply is held until the pharmacist's
request has arrived, which only a parallel review can satisfy (sequential calls would time out).
"""

from __future__ import annotations

import json
import threading

from fake_openai import Reply

from clinreason.samples import load_sample

KB = "uti-cystitis/CA-ON/"
NITRO_DOSE = KB + "monograph-nitrofurantoin#dose-and-regimen"
SX = KB + "rules-ca-on#sx-dysuria"
RATIONALE = "Nitrofurantoin is first line for acute cystitis."


def _proposal_in(req: dict) -> dict:
    """The PROPOSAL JSON a pharmacist request carries (the line between its fences)."""
    lines = req["messages"][-1]["content"].split("\n")
    [start] = [i for i, line in enumerate(lines) if line.startswith("<<<PROPOSAL ")]
    return json.loads(lines[start + 1])


def _review(text: str) -> Reply:
    return Reply.json({"verdict": "approve", "concerns": [], "suggested_agent": None, "summary": {"text": text, "citations": [NITRO_DOSE]}})


class Script:
    """Doctor: `doctor` (a proposal dict), answered only once a pharmacist request has arrived when `wait`.
    Pharmacist: approves, saying which proposal it saw."""

    def __init__(self, doctor: dict, wait: bool):
        self.doctor, self.wait = doctor, wait
        self.pharmacist_called = threading.Event()
        self.seen: list[dict] = []

    def __call__(self, req: dict) -> Reply:
        if req["model"] == "pharmacist-model":
            proposal = _proposal_in(req)
            self.seen.append(proposal)
            self.pharmacist_called.set()
            said = "early review" if not proposal["rationale"] else f"review of {proposal['agent'] or proposal['action']}"
            return _review(f"Checked nitrofurantoin for this patient ({said}).")
        if self.wait:
            assert self.pharmacist_called.wait(20), "the pharmacist's review did not start while the doctor was answering"
        return Reply.json(self.doctor)


def _treat(agent: str = "nitrofurantoin") -> dict:
    return {"action": "treat", "agent": agent, "rationale": [
        {"text": "Acute dysuria meets the symptom criteria.", "citations": [SX]}, {"text": RATIONALE, "citations": [NITRO_DOSE]}]}


def test_the_review_of_the_first_option_runs_while_the_doctor_answers_and_is_used(llm_pipeline, fake_openai):
    script = fake_openai.handler = Script(_treat(), wait=True)
    a = llm_pipeline(llm_timeout=30.0).run(load_sample("uncomplicated"))
    # The doctor answered (no fallback), so its reply came after the pharmacist's request arrived.
    assert a.audit["llm_fallbacks"] == []
    assert (a.rounds[0].doctor_backend, a.rounds[0].pharmacist_backend) == ("llm:doctor-model", "llm:pharmacist-model")
    assert a.plan.option == "nitrofurantoin" and len(a.rounds) == 1
    # One review, of the protocol's first allowed option as such (no rationale), used as the round's review.
    assert script.seen == [{"action": "treat", "agent": "nitrofurantoin", "rationale": []}]
    assert a.rounds[0].review.summary.text == "Checked nitrofurantoin for this patient (early review)."
    assert a.rounds[0].proposal.rationale[1].text == RATIONALE  # the round keeps the doctor's own proposal
    assert a.audit["review_path"] == "parallel, used: the review of nitrofurantoin made while the doctor answered"
    assert "- Review path: parallel, used" in a.report_markdown
    assert len(fake_openai.chat_requests) == 2


def test_a_doctor_who_differs_gets_a_review_of_the_actual_proposal(llm_pipeline, fake_openai):
    escalate = {"action": "escalate", "agent": None, "rationale": [{"text": "A prescriber should decide.", "citations": [SX]}]}
    script = fake_openai.handler = Script(escalate, wait=True)
    a = llm_pipeline(llm_timeout=30.0).run(load_sample("uncomplicated"))
    assert a.rounds[0].proposal.action == "escalate"
    # The early review was made and left unread; the round's review is of the escalation.
    assert {"action": "treat", "agent": "nitrofurantoin", "rationale": []} in script.seen
    assert {"action": "escalate", "agent": None, "rationale": escalate["rationale"]} in script.seen
    assert a.rounds[0].review.summary.text == "Checked nitrofurantoin for this patient (review of escalate)."
    assert a.audit["review_path"].startswith("parallel, discarded: the doctor proposed escalate, not nitrofurantoin")
    assert len(fake_openai.chat_requests) == 3


def test_with_the_setting_off_the_pharmacist_reviews_after_the_doctor(llm_pipeline, fake_openai):
    script = fake_openai.handler = Script(_treat(), wait=False)
    a = llm_pipeline(parallel_review=False).run(load_sample("uncomplicated"))
    [seen] = script.seen
    assert seen["agent"] == "nitrofurantoin" and seen["rationale"][1]["text"] == RATIONALE  # the doctor's proposal
    assert a.rounds[0].review.summary.text == "Checked nitrofurantoin for this patient (review of nitrofurantoin)."
    assert a.audit["review_path"] == "sequential"
    assert [r.model for r in fake_openai.chat_requests] == ["doctor-model", "pharmacist-model"]


def test_a_referral_makes_no_early_review(llm_pipeline, fake_openai):
    note = {"urgency": "emergency_or_same_day", "reasons": [], "patient_advice": [], "avoid_agents": []}
    fake_openai.handler = lambda req: Reply.json(note)
    a = llm_pipeline().run(load_sample("fever-on-lisinopril"))
    assert a.plan.action == "refer" and "review_path" not in a.audit
    assert [r.model for r in fake_openai.chat_requests] == ["doctor-model"]


def test_the_offline_audit_has_no_review_path(offline_pipeline):
    a = offline_pipeline.run(load_sample("uncomplicated"))
    assert "review_path" not in a.audit and a.rounds[0].pharmacist_backend == "rules"


def test_the_setting_reads_from_the_environment(monkeypatch):
    from clinreason.config import Settings

    assert Settings().parallel_review is True
    monkeypatch.setenv("CLINREASON_PARALLEL_REVIEW", "false")
    assert Settings().parallel_review is False
