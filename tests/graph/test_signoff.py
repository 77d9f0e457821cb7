"""Prescriber sign-off: an interrupt that survives a process restart."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from clinreason.pipeline import AssessmentNotFound, InvalidSignoff, NotAwaitingSignoff
from clinreason.samples import load_sample


def _python(code: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_signoff_resumes_in_a_new_process_after_restart(kb_index):
    # Process 1 assesses and exits while the assessment waits for sign-off.
    first = _python(
        "import json, clinreason\n"
        "from clinreason.samples import load_sample\n"
        "a = clinreason.assess(load_sample('warfarin'))\n"
        "print(json.dumps({'id': a.id, 'status': a.status, 'agent': a.plan.option}))\n"
    )
    assert first["status"] == "awaiting_signoff" and first["agent"] == "trimethoprim"
    # Process 2 (a fresh interpreter: nothing in memory) applies the sign-off.
    second = _python(
        "import json\n"
        "from clinreason.pipeline import get_pipeline\n"
        f"a = get_pipeline().signoff({first['id']!r}, 'approve', 'RPh-1234', 'reviewed INR plan')\n"
        "print(json.dumps({'status': a.status, 'signoff': a.signoff.model_dump(), 'agent': a.plan.option, 'md': a.report_markdown}))\n"
    )
    assert second["status"] == "final" and second["agent"] == "trimethoprim"
    assert second["signoff"]["action"] == "approve" and second["signoff"]["prescriber_id"] == "RPh-1234"
    assert "**approve**" in second["md"] and "RPh-1234" in second["md"] and "Awaiting sign-off" not in second["md"]


def test_amend_to_an_allowed_agent(offline_pipeline):
    a = offline_pipeline.run(load_sample("uncomplicated"))
    signed = offline_pipeline.signoff(a.id, "amend", "MD-77", "patient prefers a single dose", agent="fosfomycin")
    assert signed.plan.option == "fosfomycin" and signed.plan.decided_by == "prescriber"
    assert signed.recommendation.duration == "single dose" and signed.status == "final"


def test_amend_to_an_excluded_agent_is_refused_and_changes_nothing(offline_pipeline):
    a = offline_pipeline.run(load_sample("warfarin"))
    with pytest.raises(InvalidSignoff) as info:
        offline_pipeline.signoff(a.id, "amend", "MD-77", agent="tmp_smx")
    assert "EX-WARFARIN" in info.value.errors["agent"]
    assert offline_pipeline.get(a.id).status == "awaiting_signoff"
    assert offline_pipeline.signoff(a.id, "approve", "MD-77").status == "final"


def test_reject_means_no_antibiotic(offline_pipeline):
    a = offline_pipeline.run(load_sample("uncomplicated"))
    signed = offline_pipeline.signoff(a.id, "reject", "MD-9", "prefers delayed prescription")
    assert signed.plan.action == "rejected" and signed.recommendation is None


def test_bad_signoffs(offline_pipeline):
    a = offline_pipeline.run(load_sample("uncomplicated"))
    with pytest.raises(InvalidSignoff) as info:
        offline_pipeline.signoff(a.id, "bless", "")
    assert set(info.value.errors) == {"action", "prescriber_id"}
    with pytest.raises(AssessmentNotFound):
        offline_pipeline.signoff("no-such-id", "approve", "MD-1")
    referral = offline_pipeline.run(load_sample("male"))
    with pytest.raises(NotAwaitingSignoff):
        offline_pipeline.signoff(referral.id, "approve", "MD-1")
    offline_pipeline.signoff(a.id, "approve", "MD-1")
    with pytest.raises(NotAwaitingSignoff):
        offline_pipeline.signoff(a.id, "approve", "MD-1")


# --- blocking checks: an unverified agent is approved only once each unrecognised entry is acknowledged ---
UNKNOWN_MED = "Zorbaxol 20 mg daily"


def _only_unverified_left():
    from patients import make_patient

    # 17: fosfomycin is excluded (EX-AGE); nitrofurantoin allergy; an unknown drug leaves TMP-SMX and trimethoprim unverified
    return make_patient(age=17, history={"meds": ["metformin", UNKNOWN_MED], "allergies": ["nitrofurantoin"]})


def test_approval_of_an_unverified_plan_waits_for_each_acknowledgement(offline_pipeline):
    from clinreason.pipeline import UnacknowledgedChecks

    a = offline_pipeline.run(_only_unverified_left())
    assert a.plan.option == "tmp_smx" and [c.field for c in a.plan.blocking_checks] == ["history.meds[1]"]
    first_screen = a.report_markdown.split("## Patient")[0]
    assert "**Blocking checks:**" in first_screen and UNKNOWN_MED in first_screen

    with pytest.raises(UnacknowledgedChecks) as info:
        offline_pipeline.signoff(a.id, "approve", "RPh-1")
    assert [c.entry for c in info.value.pending] == [UNKNOWN_MED]
    with pytest.raises(InvalidSignoff) as bad:  # acknowledging something that is not a check is an error, not a pass
        offline_pipeline.signoff(a.id, "approve", "RPh-1", acknowledged=["metformin"])
    assert "not a blocking check" in bad.value.errors["acknowledged"]
    assert offline_pipeline.get(a.id).status == "awaiting_signoff"  # nothing was signed

    signed = offline_pipeline.signoff(a.id, "approve", "RPh-1", "called the patient: Zorbaxol is a vitamin", acknowledged=["zorbaxol 20 MG daily"])
    assert signed.status == "final" and signed.plan.option == "tmp_smx"
    assert signed.signoff.acknowledged == [UNKNOWN_MED]
    assert "Blocking checks acknowledged" in signed.report_markdown and "Approval is refused" not in signed.report_markdown


def test_a_check_can_be_acknowledged_by_its_field_and_reject_needs_none(offline_pipeline):
    a = offline_pipeline.run(_only_unverified_left())
    assert offline_pipeline.signoff(a.id, "approve", "RPh-2", acknowledged=["history.meds[1]"]).status == "final"
    b = offline_pipeline.run(_only_unverified_left())
    assert offline_pipeline.signoff(b.id, "reject", "RPh-2").plan.action == "rejected"


def test_amending_to_an_unverified_agent_needs_its_checks(offline_pipeline):
    from clinreason.pipeline import UnacknowledgedChecks

    a = offline_pipeline.run(_only_unverified_left())
    with pytest.raises(UnacknowledgedChecks):
        offline_pipeline.signoff(a.id, "amend", "MD-3", agent="trimethoprim")
    signed = offline_pipeline.signoff(a.id, "amend", "MD-3", agent="trimethoprim", acknowledged=[UNKNOWN_MED])
    assert signed.plan.option == "trimethoprim" and signed.plan.blocking_checks[0].entry == UNKNOWN_MED


def test_a_verified_plan_needs_no_acknowledgement_even_with_unknown_entries(offline_pipeline):
    from patients import make_patient

    a = offline_pipeline.run(make_patient(history={"meds": [UNKNOWN_MED], "allergies": ["nitrofurantoin"]}))
    assert a.plan.option == "fosfomycin" and a.plan.blocking_checks == []  # passed over the unverified agents
    assert len(a.rounds) == 1 and a.rounds[0].proposal.agent == "fosfomycin"  # the doctor does not propose an unverified agent
    assert "## Blocking checks" not in a.report_markdown
    assert offline_pipeline.signoff(a.id, "approve", "RPh-3").status == "final"


def test_signoff_judges_a_fresh_evaluation_not_the_stored_result():
    """A record from before a rule changed (or altered in the store) that shows no blocking
    checks does not let an unverified plan through: sign-off re-evaluates the patient."""
    from clinreason import assess
    from clinreason.assessment import validate
    from clinreason.protocols.plan import UnacknowledgedChecks, treat_plan, validate_signoff

    a = assess(_only_unverified_left(), mode="deterministic")
    stale = a.protocol.model_copy(update={"unverified_entries": [], "blocking_checks": [],
                                          "options": [ev.model_copy(update={"unverified_by": []}) for ev in a.protocol.options]})
    plan = treat_plan(stale, "tmp_smx", "agreed", "agents")
    assert plan.blocking_checks == []  # what the old record says
    request = validate(_only_unverified_left())
    with pytest.raises(UnacknowledgedChecks):
        validate_signoff({"action": "approve", "prescriber_id": "RPh-1"}, request, plan)
    assert validate_signoff({"action": "approve", "prescriber_id": "RPh-1", "acknowledged": [UNKNOWN_MED]}, request, plan).acknowledged == [UNKNOWN_MED]
