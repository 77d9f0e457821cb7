"""Cystitis-specific question reading for retrieval: numbers and episode counts against the
profile's thresholds, and the guidelines a question can name."""

from __future__ import annotations

import re

from clinreason.formulary import Formulary
from clinreason.protocols.uti_cystitis.profile import UtiProfile

AGE = re.compile(r"\b(\d{1,3})[- ]?(?:years?[- ]old|year|yrs?|yo|y/o)\b", re.IGNORECASE)
ADULT_AGE = 18
RENAL = re.compile(r"\b(?:egfr|crcl|gfr|creatinine clearance)\D{0,12}(\d{1,3})", re.IGNORECASE)
# "2 bladder infections since January", "three UTIs this year", "her 3rd UTI":
# a count of episodes is what the recurrence rules (2 in 6 months, 3 in 12) turn on.
EPISODES = re.compile(
    r"\b(?:(?:\d{1,2}|two|three|four|five|six|several|multiple)\s+(?:\w+\s+)?(?:utis?|uti's|infections|episodes)"
    r"|(?:2nd|3rd|[4-9]th|second|third|fourth|fifth)\s+(?:\w+\s+)?(?:uti|infection|episode))\b",
    re.IGNORECASE,
)
# Guideline documents a question can name. "NICE" is matched in capitals only,
# so "a nice patient" names nothing.
NAMED_SOURCES = {
    "guideline-beers": re.compile(r"\bbeers\b", re.IGNORECASE),
    "guideline-idsa-2011": re.compile(r"\b(?:idsa|escmid)\b", re.IGNORECASE),
    "guideline-nice-ng109": re.compile(r"\bNICE\b|\b[Nn][Gg] ?109\b"),
}


def ages(text: str) -> list[int]:
    return [int(m.group(1)) for m in AGE.finditer(text)]


def renal_values(text: str) -> list[int]:
    return [int(m.group(1)) for m in RENAL.finditer(text)]


def link_numbers(query: str, profile: UtiProfile, formulary: Formulary, found: set[str]) -> None:
    """Rules a question's ages, kidney values and episode counts decide (updates `found`)."""
    for age in ages(query):
        # Any minor links both age rules: questions at the boundary ("16 year
        # old") are about where the limits fall.
        if age < max(profile.min_age, ADULT_AGE):
            found.add("CF-AGE-BELOW-MIN")
        if age < ADULT_AGE or any(age < a.min_age for a in formulary.options.values()):
            found.add("EX-AGE")
    if EPISODES.search(query):
        found.update(("RC-RECURRENT-6M", "RC-RECURRENT-12M"))


def link_after_cues(query: str, profile: UtiProfile, found: set[str]) -> None:
    values = renal_values(query)
    if values:  # a stated eGFR/CrCl decides the renal complicating factor, not the word "eGFR"
        found.add("EX-RENAL")
        found.discard("CF-RENAL")
        if min(values) < profile.renal_complicating_below:
            found.add("CF-RENAL")


def expansion_terms(query: str, profile: UtiProfile) -> list[str]:
    """Ages and kidney-function values compared with the profile's own thresholds."""
    out = []
    for age in ages(query):
        if age < profile.min_age:
            out.append(f"age below {profile.min_age} complicating factor")
        if age < ADULT_AGE:
            out.append(f"under {ADULT_AGE} age limit")
        if age >= 65:
            out.append("older adults 65 and older")
    for value in renal_values(query):
        if value < profile.renal_complicating_below:
            out.append(f"renal dysfunction below {profile.renal_complicating_below:g} mL/min")
    return out
