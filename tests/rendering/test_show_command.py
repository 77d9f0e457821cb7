"""`clinreason show ID --report | --notification [--format md|html|pdf] [--out FILE]`, run as a
user runs it: a new process. A PDF goes to a file or a pipe, never to a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest
from cli_helpers import cli
from pdf_tools import pdf_text


def run_bytes(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "clinreason.cli", *args], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def stored(kb_index):
    r = cli("assess", "--sample", "uncomplicated", "--json", timeout=180)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_pdf_to_a_file(stored, tmp_path):
    out = tmp_path / "report.pdf"
    r = cli("show", stored["id"], "--report", "--format", "pdf", "--out", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF-") and f"wrote {out}" in " ".join(r.stderr.split()) and r.stdout == ""
    text = pdf_text(pdf)
    assert "page 1 of" in text and stored["id"] in text and "DRAFT: not signed" in text
    assert stored["recommendation"]["dose"] in text


def test_pdf_to_a_pipe_is_written_as_bytes(stored):
    r = run_bytes("show", stored["id"], "--notification", "--format", "pdf")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"%PDF-") and r.stdout.rstrip().endswith(b"%%EOF")
    text = pdf_text(r.stdout)
    assert "Notification to the primary care provider" in text and "What was prescribed" in text
    assert "Name / Date of birth / Health number: to be completed by the pharmacy" in text


def test_pdf_to_a_terminal_is_refused(stored):
    main, secondary = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "clinreason.cli", "show", stored["id"], "--report", "--format", "pdf"],
                           stdout=secondary, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=120)
    finally:
        os.close(secondary)
        os.close(main)
    assert r.returncode == 2
    assert "a PDF is not written to a terminal: use --out FILE" in " ".join(r.stderr.decode().split())


def test_html_and_markdown(stored, tmp_path):
    out = tmp_path / "notification.html"
    r = cli("show", stored["id"], "--notification", "--format", "html", "--out", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    html = out.read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "Age 28, sex female" in html
    md = cli("show", stored["id"], "--notification")
    assert md.returncode == 0 and md.stdout.startswith("# Notification to the primary care provider")
    report = cli("show", stored["id"], "--report", "--format", "md")
    assert report.returncode == 0 and report.stdout == stored["report_markdown"]  # as `show --report` always printed


@pytest.mark.parametrize(("args", "message"), [
    (["--report", "--format", "docx"], "--format must be one of md, html, pdf"),
    (["--format", "pdf"], "--format and --out go with --report or --notification"),
    (["--report", "--notification"], "give at most one of --report and --notification"),
])
def test_bad_options_exit_2(stored, args, message):
    r = cli("show", stored["id"], *args)
    assert r.returncode == 2 and message in r.stderr


def test_a_missing_assessment_keeps_exit_2(tmp_path):
    r = cli("show", "no-such-assessment", "--notification", "--format", "pdf", "--out", str(tmp_path / "x.pdf"))
    assert r.returncode == 2 and "no assessment 'no-such-assessment'" in r.stderr and not (tmp_path / "x.pdf").exists()
