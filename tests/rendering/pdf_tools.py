"""Reading a PDF back with poppler (pdftotext, pdfinfo), as a person's viewer would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest


def poppler(tool: str) -> str:
    """The path of a poppler tool: missing is a failure under CI (.ci/run installs poppler-utils), a skip elsewhere."""
    exe = shutil.which(tool)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} (poppler-utils) is missing: .ci/run installs it")
        pytest.skip(f"{tool} (poppler-utils) is not installed")
    return exe


def pdf_text(pdf: bytes) -> str:
    """The PDF's text in reading order, every run of whitespace one space."""
    done = subprocess.run([poppler("pdftotext"), "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True, timeout=60)
    return " ".join(done.stdout.decode("utf-8").split())


def pdf_info(pdf: bytes) -> dict[str, str]:
    """The PDF's document information (Title, Subject, Keywords, Pages, ...)."""
    done = subprocess.run([poppler("pdfinfo"), "-"], input=pdf, capture_output=True, check=True, timeout=60)
    return dict(re.findall(r"^([A-Za-z ]+?):\s*(.*)$", done.stdout.decode("utf-8"), re.MULTILINE))


def words_outside_the_text_area(pdf: bytes, margin_pt: float = 28.0) -> list[str]:
    """Words whose box runs past the page's side margins (overflowing lines, unbroken ids, wide tables)."""
    done = subprocess.run([poppler("pdftotext"), "-bbox", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True,
                          timeout=60)
    bad, width = [], 0.0
    for line in done.stdout.decode("utf-8").splitlines():
        page = re.search(r'<page width="([\d.]+)"', line)
        if page:
            width = float(page.group(1))
        word = re.search(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">(.*)</word>', line)
        if word and (float(word.group(1)) < margin_pt or float(word.group(2)) > width - margin_pt):
            bad.append(word.group(3))
    return bad
