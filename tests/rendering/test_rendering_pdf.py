"""PDFs of real assessments, read back as a person's viewer would (pdftotext, pdfinfo): the
content, page numbers, the id and status on every page, DRAFT while unsigned, nothing past the margins."""

from __future__ import annotations

import sys

import pytest
from pdf_tools import pdf_info, pdf_text, words_outside_the_text_area

from clinreason.protocols.actions import REASSESS, plan_actions
from clinreason.protocols.registry import get_spec
from clinreason.rendering import (
    DRAFT_LABEL,
    PDF,
    PdfUnavailable,
    notification_document,
    report_document,
    to_pdf,
)
from clinreason.rendering.notification import route_words


@pytest.fixture(scope="module")
def pdfs(assessed, signed):
    """(name, kind) -> (Assessment, Document, PDF bytes, its text, its info)."""
    out = {}
    for name, (a, patient) in [*assessed.items(), ("signed", (signed, None))]:
        for doc in (report_document(a), notification_document(a, patient)):
            pdf = doc.render(PDF)
            out[name, doc.kind] = (a, doc, pdf, pdf_text(pdf), pdf_info(pdf))
    return out


def test_every_page_has_its_number_the_id_and_the_status(pdfs):
    for (name, kind), (a, doc, pdf, text, info) in pdfs.items():
        assert pdf.startswith(b"%PDF-"), (name, kind)
        pages = int(info["Pages"])
        for n in range(1, pages + 1):
            assert f"page {n} of {pages}" in text, (name, kind, n)
        footer = f"Assessment {a.id} · {doc.status}"
        assert text.count(footer) == pages, (name, kind)
        assert text.count(DRAFT_LABEL) >= (pages if a.status == "awaiting_signoff" else 0), (name, kind)
        if a.status != "awaiting_signoff":
            assert DRAFT_LABEL not in text and "DRAFT" not in text, (name, kind)
        assert info["Title"] == doc.title and a.id in info["Subject"] and a.id in info["Keywords"], (name, kind, info)


def test_nothing_runs_past_the_margins(pdfs):
    # Long chunk ids, hashes and tables wrap inside the text area.
    for (name, kind), (_, _, pdf, _, _) in pdfs.items():
        assert words_outside_the_text_area(pdf) == [], (name, kind)


def test_report_pdf_has_the_decision_the_regimen_and_the_actions(pdfs):
    for (name, kind), (a, _, _, text, _) in pdfs.items():
        if kind != "report":
            continue
        low = text.lower()
        meaning = get_spec(a.protocol.protocol_id).decisions[a.decision].meaning
        assert a.decision in text or meaning.lower() in low, name
        r = a.plan.regimen
        if r is not None:
            assert r.drug.lower() in low and r.dose in text, name
        spec = get_spec(a.protocol.protocol_id)
        for act in plan_actions(a.protocol, a.plan.option):
            if REASSESS in act.codes:  # said in the protocol's follow-up wording
                assert spec.wording.follow_up.format(reassess=a.protocol.follow_up.reassess) in text, name
            else:
                assert " ".join(act.text.split()) in text, (name, act.text)
        assert "&lt;" not in text and "&gt;" not in text and "&amp;" not in text, name


def test_notification_pdf_has_what_why_follow_up_and_the_blank_identifiers(pdfs):
    a, _, _, text, info = pdfs["raas-nitrofurantoin-allergy", "notification"]
    spec = get_spec(a.protocol.protocol_id)
    r = a.plan.regimen
    assert "What was prescribed" in text and r.drug in text and r.dose in text and route_words(r.route) in text
    assert "Why" in text and spec.decisions[a.decision].meaning.lower() in text.lower()
    assert "Follow-up" in text and spec.wording.follow_up.format(reassess=a.protocol.follow_up.reassess) in text
    assert "Name / Date of birth / Health number: to be completed by the pharmacy" in text
    assert "Name: ______" in text and "Health number: ______" in text
    for name in ("uncomplicated", "raas-nitrofurantoin-allergy", "red-flags-older-adult", "lyme-warfarin-caution", "signed"):
        assert int(pdfs[name, "notification"][4]["Pages"]) == 1, name  # a one-page letter
    referral = pdfs["red-flags-older-adult", "notification"][3]
    assert "What was advised" in referral and "Referred: the patient was advised to be seen the same day" in referral
    signed = pdfs["signed", "notification"][3]
    assert "Approved by RPh-4521" in signed


def test_a_pdf_that_cannot_be_made_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if not installed
    with pytest.raises(PdfUnavailable, match="needs WeasyPrint") as missing:
        to_pdf("<p>x</p>")
    assert missing.value.status == 503 and missing.value.exit_code == 5
    monkeypatch.undo()
    import weasyprint

    def broken(*args, **kwargs):
        raise RuntimeError("layout bug")

    monkeypatch.setattr(weasyprint, "HTML", broken)
    with pytest.raises(PdfUnavailable, match="could not be rendered"):
        to_pdf("<p>x</p>")
