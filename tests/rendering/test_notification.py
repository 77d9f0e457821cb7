"""The notification to the primary care provider: who, what was prescribed or advised, why, the
cautions and the follow-up, in plain clinical words, from the stored record alone."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import clinreason
from clinreason.protocols.actions import plan_actions
from clinreason.protocols.registry import get_spec
from clinreason.rendering import HTML, notification_document, notification_markdown
from clinreason.rendering.notification import (
    frequency_words,
    regimen_words,
    route_words,
)

IDENTIFIERS = "Name / Date of birth / Health number: to be completed by the pharmacy"


def plain(md: str) -> str:
    """The Markdown's words without its marks, one space between them."""
    return " ".join(md.replace("**", "").replace("\\", "").split())


def test_no_field_names_rule_ids_or_entities(assessed, signed):
    for name, (a, patient) in [*assessed.items(), ("signed", (signed, None))]:
        md = notification_markdown(a, patient)
        for hit in a.protocol.rules_fired:
            assert hit.rule_id not in md, (name, hit.rule_id)
        for c in a.protocol.cautions:
            assert c.rule_id not in md, (name, c.rule_id)
        assert a.decision not in md, name  # the decision table's meaning is shown, not its value
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", md), (name, re.findall(r"\b[a-z]+_[a-z_]+\b", md))
        assert not re.search(r"&(?:[a-z]+|#\d+);", md), name  # no markup entities in any format
        assert "= true" not in md and "= false" not in md, name


def test_treatment_says_what_was_prescribed_why_and_the_follow_up(assessed):
    a, patient = assessed["raas-nitrofurantoin-allergy"]
    spec = get_spec(a.protocol.protocol_id)
    md = notification_markdown(a, patient)
    text = plain(md)
    r = a.plan.regimen
    assert "## What was prescribed" in md and "What was advised" not in md
    for cell in (r.drug, r.dose, route_words(r.route), frequency_words(r.frequency), r.duration):
        assert f"| {cell} " in md or f" {cell} |" in md, cell
    assert regimen_words(r) in text.lower()
    assert spec.decisions[a.decision].meaning.lower() in text.lower()
    for hit in a.protocol.rules_fired:
        assert hit.title in text
    assert spec.wording.follow_up.format(reassess=a.protocol.follow_up.reassess) in text
    assert "Escalate (medical assessment) if: " + ", ".join(a.protocol.follow_up.escalate_if) in text
    assert spec.wording.return_line in text
    # the caution and what to do about it; the options the protocol could not use, with the reason
    major = next(c for c in a.protocol.cautions if c.severity == "major")
    assert major.message in text and major.action in text
    assert "Options the protocol could not use for this patient" in md and spec.option_name("nitrofurantoin") in md
    # the action that asks for this document, and the reassessment, are not repeated among the cautions
    texts = [act.text for act in plan_actions(a.protocol, a.plan.option)]
    assert "Reassess at 48-72 hours." in texts and md.count("Reassess at 48-72 hours.") == 1
    assert "Send the notification" not in md


def test_who_and_the_blank_identifier_lines(assessed, signed):
    a, patient = assessed["raas-nitrofurantoin-allergy"]
    md = notification_markdown(a, patient)
    assert IDENTIFIERS in md
    assert re.search(r"Name: _{10,}\s+Date of birth: _{10,}\s+Health number: _{10,}", md)
    assert "To: ____" in md and "primary care provider" in md
    assert re.search(r"From: _{10,}, pharmacist or prescriber; pharmacy _{10,}", md)  # not signed, run locally: blanks
    assert f"Age {patient['age']}, sex {patient['sex']}" in md
    assert "Medications reviewed: lisinopril, spironolactone, ibuprofen." in md
    assert "DRAFT: not signed" in md and "Awaiting prescriber sign-off" in md
    # without the checkpoint's patient: blank lines for age and sex, never a guess
    assert re.search(r"Age: _{10,}\s+Sex: _{10,}", notification_markdown(a, None))
    done = notification_markdown(signed, None)
    assert "DRAFT" not in done and "From: RPh-4521, pharmacist or prescriber" in done
    assert "Approved by RPh-4521 on " + signed.signoff.signed_at[:10] in done and "Comment: INR check arranged." in done


def test_referral_says_what_was_advised_and_how_soon(assessed):
    a, patient = assessed["red-flags-older-adult"]
    md = notification_markdown(a, patient)
    assert "## What was advised" in md and "What was prescribed" not in md
    assert "Nothing was prescribed under this assessment." in md
    assert "Referred: the patient was advised to be seen the same day" in md
    assert get_spec(a.protocol.protocol_id).decisions[a.decision].meaning.lower() in plain(md).lower()
    assert "Red flag: fever." in md and "DRAFT" not in md and "prescriber sign-off was not required" in md


def test_prophylaxis_with_a_caution_and_counselling(assessed):
    a, patient = assessed["lyme-warfarin-caution"]
    md = notification_markdown(a, patient)
    text = plain(md)
    assert "as a single dose" in text and a.plan.regimen.dose in md
    caution = next(c for c in a.protocol.cautions if c.severity != "counsel")
    assert caution.message in text and caution.action in text
    counsel = [c for c in a.protocol.cautions if c.severity == "counsel"]
    if counsel:
        assert "## Counselling given" in md and counsel[0].action in text
    assert f"weight {patient['weight_kg']} kg" in md


def test_html_of_the_notification_is_the_same_text(assessed):
    a, patient = assessed["uncomplicated"]
    doc = notification_document(a, patient)
    html = doc.render(HTML).decode("utf-8")
    assert "<h1>Notification to the primary care provider</h1>" in html and "<table>" in html
    assert IDENTIFIERS in html and "DRAFT: not signed" in html
    assert doc.filename("application/pdf") == f"notification-{a.id}.pdf"


def _engine_words():
    path = Path(__file__).parents[1] / "protocols" / "test_engine_words.py"
    spec = importlib.util.spec_from_file_location("engine_words_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.banned()


@pytest.mark.parametrize("path", sorted((Path(clinreason.__file__).parent / "rendering").rglob("*.py")), ids=lambda p: p.name)
def test_rendering_names_no_condition(path):
    # rendering/ is engine: every condition-specific word of the notification comes from the protocol's spec.
    text = path.read_text("utf-8")
    hits = sorted(w for w, pattern in _engine_words().items() if pattern.search(text))
    assert not hits, f"rendering/{path.name} names {hits}"
