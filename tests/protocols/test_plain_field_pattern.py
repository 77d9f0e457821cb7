"""plain.py's `field = value` pattern: rewritten without a nested quantifier, matching exactly as before."""

from __future__ import annotations

import re
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from clinreason.protocols.plain import _FIELD, detail

# The pattern as it was: `(?:[a-z][a-z0-9]*_?)+` backtracks exponentially on a long word with no `=`.
_OLD = re.compile(r"\b((?:[a-z][a-z0-9]*_?)+(?:\.[A-Za-z][A-Za-z0-9_]*)*)\s*=\s*([A-Za-z0-9_.\-]+)")


def _groups(m: re.Match[str]) -> str:
    return f"<{m.group(1)}|{m.group(2)}>"


@settings(max_examples=3000)
@given(st.text(alphabet="ab9_.=B -xz", max_size=30))
def test_the_pattern_matches_what_the_old_one_matched(text):
    assert _FIELD.sub(_groups, text) == _OLD.sub(_groups, text)


def test_a_rule_detail_still_reads_in_words():
    labels = {"g6pd_deficiency": "G6PD deficiency"}
    assert detail("history.g6pd_deficiency = true", labels) == "G6PD deficiency reported"
    assert detail("sex = male; renal_function_summary = impaired", labels) == "sex: male; renal function summary: impaired"
    assert detail("red_flags.fever = false", labels) == "no fever"


def test_a_long_word_without_an_equals_sign_does_not_backtrack():
    # 40 letters: the old pattern tried 2^39 splits of the word before failing (it never returns).
    # Run apart, with a generous limit, so a regression fails instead of hanging the suite.
    code = "from clinreason.protocols.plain import _FIELD; assert _FIELD.search('a' * 40 + ' reported') is None"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
