"""GET /v1/assessments/{id}/report and /notification: Markdown, HTML or PDF by Accept; 406 for
anything else; the same access control as every read; a PDF failure is a problem, never a 500."""

from __future__ import annotations

import sys

import pytest

from clinreason.samples import load_sample

PDF, HTML, MD = "application/pdf", "text/html", "text/markdown"
DOCUMENTS = ("report", "notification")


@pytest.fixture
def stored(api):
    r = api.post_patient(load_sample("raas-nitrofurantoin-allergy"))
    assert r.status_code == 201, r.text
    return r.json()


def get(api, aid, doc, accept=None, role="submitter"):
    headers = api.headers(role)
    if accept is not None:
        headers["Accept"] = accept
    return api.client.get(f"/v1/assessments/{aid}/{doc}", headers=headers)


@pytest.mark.parametrize("doc", DOCUMENTS)
@pytest.mark.parametrize(("accept", "media"), [
    (None, MD), ("*/*", MD), ("text/*", MD), (MD, MD), (HTML, HTML), (PDF, PDF),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", HTML),  # a browser
    ("application/pdf;q=0.5, text/html;q=0.9", HTML), ("text/markdown;q=0, */*", HTML), ("application/*", PDF),
])
def test_accept_picks_the_format(api, stored, doc, accept, media):
    r = get(api, stored["id"], doc, accept)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media and r.headers["vary"] == "Accept"
    if media == PDF:
        assert r.content.startswith(b"%PDF-")
        assert r.headers["content-disposition"] == f'inline; filename="{doc}-{stored["id"]}.pdf"'
    elif media == HTML:
        assert r.text.startswith("<!DOCTYPE html>") and "<script" not in r.text and "&amp;gt;" not in r.text
    else:
        assert r.headers["content-type"] == "text/markdown; charset=utf-8"
        if doc == "report":
            assert r.text == stored["report_markdown"]


@pytest.mark.parametrize("doc", DOCUMENTS)
@pytest.mark.parametrize("accept", ["application/json", "image/png", "text/markdown;q=0", "application/json, text/plain"])
def test_anything_else_is_406_listing_what_is_offered(api, stored, doc, accept):
    r = get(api, stored["id"], doc, accept)
    assert r.status_code == 406 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "urn:clinreason:problem:not-acceptable" and problem["status"] == 406
    assert problem["errors"] == [{"field": "Accept", "message": "supported: text/markdown, text/html, application/pdf"}]
    assert r.headers["vary"] == "Accept"


def test_the_notification_carries_the_key_the_site_and_the_patient(api, stored):
    md = get(api, stored["id"], "notification").text
    assert "pharmacy pharmacy-a" in md  # the submitting key's site
    assert "Age 52, sex female" in md  # from the checkpoint: the stored record holds no patient
    assert "DRAFT: not signed" in md
    signed = api.client.post(f"/v1/assessments/{stored['id']}/signoff", json={"action": "approve"}, headers=api.headers("prescriber"))
    assert signed.status_code == 200, signed.text
    md = get(api, stored["id"], "notification").text
    assert "DRAFT" not in md and "Approved by test-prescriber" in md and "From: test-prescriber" in md


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_same_access_control_as_every_read(api, stored, doc):
    other_site = api.store.create_key("elsewhere", "admin", "pharmacy-b")
    elsewhere = api.client.get(f"/v1/assessments/{stored['id']}/{doc}", headers={"Authorization": f"Bearer {other_site}",
                                                                                  "Accept": PDF})
    missing = get(api, "no-such-id", doc, PDF)
    assert elsewhere.status_code == missing.status_code == 404  # another site's assessment looks missing
    assert elsewhere.json()["detail"] == f"no assessment '{stored['id']}'"
    anonymous = api.client.get(f"/v1/assessments/{stored['id']}/{doc}")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_a_pdf_failure_is_a_problem_not_a_500(api, stored, doc, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if WeasyPrint were not installed
    r = get(api, stored["id"], doc, PDF)
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:clinreason:problem:pdf-unavailable" and "Markdown and HTML" in r.json()["detail"]
    assert get(api, stored["id"], doc, HTML).status_code == 200  # the other formats still work


def test_the_openapi_document_lists_the_formats(api):
    paths = api.client.get("/openapi.json").json()["paths"]
    for doc in DOCUMENTS:
        op = paths[f"/v1/assessments/{{assessment_id}}/{doc}"]["get"]
        assert set(op["responses"]["200"]["content"]) == {MD, HTML, PDF}
        assert {"401", "403", "404", "406", "429", "503"} <= set(op["responses"])
        assert "Accept" in op["description"]
