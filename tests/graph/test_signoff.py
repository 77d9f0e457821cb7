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
        "print(json.dumps({'id': a.id, 'status': a.status, 'agent': a.plan.agent}))\n"
    )
    assert first["status"] == "awaiting_signoff" and first["agent"] == "trimethoprim"
    # Process 2 (a fresh interpreter: nothing in memory) applies the sign-off.
    second = _python(
        "import json\n"
        "from clinreason.pipeline import get_pipeline\n"
        f"a = get_pipeline().signoff({first['id']!r}, 'approve', 'RPh-1234', 'reviewed INR plan')\n"
        "print(json.dumps({'status': a.status, 'signoff': a.signoff.model_dump(), 'agent': a.plan.agent, 'md': a.report_markdown}))\n"
    )
    assert second["status"] == "final" and second["agent"] == "trimethoprim"
    assert second["signoff"]["action"] == "approve" and second["signoff"]["prescriber_id"] == "RPh-1234"
    assert "**approve**" in second["md"] and "RPh-1234" in second["md"] and "Awaiting sign-off" not in second["md"]


def test_amend_to_an_allowed_agent(offline_pipeline):
    a = offline_pipeline.run(load_sample("uncomplicated"))
    signed = offline_pipeline.signoff(a.id, "amend", "MD-77", "patient prefers a single dose", agent="fosfomycin")
    assert signed.plan.agent == "fosfomycin" and signed.plan.decided_by == "prescriber"
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
