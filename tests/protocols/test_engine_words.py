"""The engine names no condition, drug, rule id or jurisdiction: everything condition-specific
comes from a protocol's spec (DESIGN.md, "No engine layer names ...").

The banned words are read from the registered protocols' own data (ids, options, the drugs and
classes their rules name, rule ids, decisions, profiles), so a new protocol extends the list
without editing this test. Comments and docstrings count: the engine does not talk about them
either."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import clinreason
from clinreason.protocols.registry import registry

SRC = Path(clinreason.__file__).parent
ENGINE = ["graph", "agents", "rendering", "knowledge", "api", "evaluation", "store", "samples", "cli", "fhir", "cds_hooks", "mcp_server", "pipeline.py",
          "assessment.py",
          "config.py", "errors.py", "hygiene.py",
          # the protocol seam itself is generic; registry.py is where protocols are registered by name
          "protocols/spec.py", "protocols/result.py", "protocols/profile.py", "protocols/inputs.py", "protocols/documents.py",
          "protocols/plan.py"]
# Words of the conditions and jurisdictions that no data table spells out as an id.
CONDITION_WORDS = {"cystitis", "urinary", "bladder", "lyme", "tick", "ontario", "idsa", "ocp"}


def banned() -> dict[str, re.Pattern[str]]:
    words: set[str] = set(CONDITION_WORDS)
    exact: set[str] = set()
    for spec in registry().values():
        exact.add(spec.id)
        words.update(p for p in spec.id.split("-") if len(p) >= 3)
        exact.update(spec.rules)
        words.update(spec.decisions)
        f = spec.formulary
        for o in f.options.values():
            words.update({o.id, o.drug, o.id.replace("_", "-"), o.name.split(" (")[0].lower()})
        for r in [*f.interactions, *f.cautions]:
            words.update(r.drugs)
            words.update(r.classes)
            # every drug the rule acts on, through its classes too ("warfarin" for a vitamin K antagonist rule)
            words.update(d.replace("_", " ") for d in f.drugs if r.triggered_by(f.ingredients_of(d), f.classes_of(d)))
        for p in spec.profiles.values():
            exact.add(p.id)
            exact.update(loc for loc in p.locale_codes if len(loc) > 2)
    out = {w: re.compile(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", re.IGNORECASE) for w in words if len(w) >= 3}
    out.update({w: re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(w)}(?![A-Za-z0-9_-])") for w in exact})
    return out


def engine_files() -> list[Path]:
    files: list[Path] = []
    for name in ENGINE:
        path = SRC / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def test_the_ban_list_is_read_from_the_protocols() -> None:
    words = banned()
    # A sample of what the registered protocols contribute: their ids, options, rule ids, profiles.
    for w in ("uti-cystitis", "lyme-pep", "nitrofurantoin", "doxycycline", "warfarin", "EX-RENAL", "CI-RETINOID", "CA-ON",
              "US-IDSA", "recommend_prophylaxis", "no_antibiotics"):
        assert w in words, w


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_engine_module_names_no_condition(path: Path) -> None:
    text = path.read_text("utf-8")
    hits = sorted({w for w, pattern in banned().items() if pattern.search(text)})
    assert not hits, f"{path.relative_to(SRC)} names {hits}: read it from the protocol's spec instead"


def test_the_check_catches_a_condition_word(tmp_path: Path) -> None:
    # The check is not vacuous: the sentence the report title used to hard-code trips it.
    sample = 'L = [f"# Cystitis assessment ({protocol.profile_id})"]'
    assert any(p.search(sample) for p in banned().values())
