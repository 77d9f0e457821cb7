"""The report a clinician signs (issue 17): a first screen with the decision, the plan, the actions
and every option not used with its reason; plain clinical wording (no field names, no markup
entities, no template text); referral wording consistent with the urgency; references grouped by
document and a small share of the report."""

from __future__ import annotations

import re
import statistics

import pytest

from clinreason.samples import load_sample, sample_index

SAMPLES = sorted(sample_index())
FIELD_NAME = re.compile(r"\b[a-z]+_[a-z0-9_]+\b|\b[a-z_]+\.[a-z_]+\s*=|\s=\s(true|false)\b")
ENTITY = re.compile(r"&(gt|lt|amp|quot|#\d+);")


@pytest.fixture(scope="module")
def reports(offline_pipeline):
    return {name: offline_pipeline.run(load_sample(name)) for name in SAMPLES}


def first_screen(md: str) -> str:
    return md.split("## Summary", 1)[1].split("\n## ", 1)[0]


def clinical_text(md: str) -> str:
    """What a clinician reads as prose: the report without its references, audit record and code spans (ids)."""
    body = md.split("## References", 1)[0]
    return re.sub(r"`[^`]*`", "", body)


@pytest.mark.parametrize("name", SAMPLES)
def test_no_field_names_entities_or_template_text(reports, name):
    text = clinical_text(reports[name].report_markdown)
    found = [m.group(0) for m in FIELD_NAME.finditer(text)]
    assert not found, found
    assert not ENTITY.search(reports[name].report_markdown)
    assert "see [" not in text  # "Adverse effects to mention: see [13]" with nothing to mention
    assert not re.search(r"\b(\w+) contains \1\b", text, re.IGNORECASE)  # "Nitrofurantoin contains nitrofurantoin"


@pytest.mark.parametrize("name", SAMPLES)
def test_first_screen_has_decision_plan_and_every_option_not_used(reports, name):
    a = reports[name]
    screen = first_screen(a.report_markdown)
    assert screen.startswith("\n**Decision:**") and "**Plan:**" in screen
    for ev in a.protocol.options:
        if ev.exclusions:
            assert f"- {a_name(a, ev.option)}: " in screen, ev.option
    if a.plan.action == "treat":
        assert "**Actions:**" in screen
        for c in a.protocol.cautions:
            if c.option in (a.plan.option, None):
                assert c.action.split(";")[0] in screen, c.rule_id


def a_name(a, option: str) -> str:
    from clinreason.protocols.registry import get_spec

    return get_spec(a.protocol.protocol_id).option_name(option)


def test_same_day_referral_is_not_also_told_to_go_at_once(reports):
    a = reports["red-flags-older-adult"]
    assert a.referral.urgency == "emergency_or_same_day"
    md = a.report_markdown
    assert "**Plan:** refer the same day" in md
    # Told to be seen today; the warning says what to do if that fails, not "go at once" for the fever they have.
    assert "at once for fever" not in md and "If they cannot be seen today" in md
    assert "## Follow-up and red flags" not in md


def test_no_treatment_gets_advice_not_a_referral_note(reports):
    md = reports["criteria-not-met"].report_markdown
    assert "## Advice" in md and "## Referral" not in md and "no referral needed" not in md.lower().replace("no referral is needed", "")


def test_no_safe_option_note_never_points_to_an_excluded_option(reports):
    a = reports["no-safe-option"]
    assert a.protocol.allowed_options == []
    note = " ".join(c.text for c in a.referral.avoid_agents)
    assert "choose" not in note.lower()
    assert "choose" not in first_screen(a.report_markdown).lower()


def test_counselling_has_the_content(reports):
    md = reports["uncomplicated"].report_markdown
    counselling = md.split("## Counselling", 1)[1].split("\n## ", 1)[0]
    assert "with food or milk" in counselling and "Adverse effects to mention: Nausea and headache" in counselling


def test_references_are_grouped_by_document_and_a_small_share(reports):
    shares = []
    for name, a in reports.items():
        md = a.report_markdown
        refs = md.split("## References", 1)[1].split("## Audit record", 1)[0]
        docs = {c.chunk_id.split("#", 1)[0] for c in a.citations}
        assert refs.count("**") // 2 == len(docs), name  # one bold document line per document
        assert len(re.findall(r"Source: ", refs)) <= len(a.citations), name
        shares.append(len(refs.encode()) / len(md.encode()))
    # Measured on the bundled samples: median 0.27; the short referral reports run highest (see docs/reports.md).
    assert statistics.median(shares) <= 1 / 3 and max(shares) < 0.4
