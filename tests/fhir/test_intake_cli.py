"""`clinreason assess bundle.json`: a FHIR Bundle from the command line."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from cli_helpers import cli
from clinreason.samples import load_sample
from fhir_bundles import bundle_of


def test_assess_a_bundle_file(tmp_path: Path):
    sample = load_sample("raas-nitrofurantoin-allergy")
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle_of(sample, today=date.today())))
    done = cli("assess", str(path), "--mode", "deterministic", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    expected = json.loads(cli("assess", "--sample", "raas-nitrofurantoin-allergy", "--mode", "deterministic", "--json").stdout)
    assert (out["decision"], out["input_hash"]) == (expected["decision"], expected["input_hash"])
    assert out["input_sources"]["format"] == "FHIR R4 Bundle"


def test_a_bundle_missing_answers_exits_2_naming_the_fhir_path(tmp_path: Path):
    b = bundle_of(load_sample("raas-nitrofurantoin-allergy"), today=date.today())
    b["entry"] = [e for e in b["entry"] if e["resource"]["resourceType"] != "QuestionnaireResponse"]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(b))
    done = cli("assess", str(path), "--mode", "deterministic", "--locale", "CA-ON")
    assert done.returncode == 2
    assert "QuestionnaireResponse.item[symptoms.dysuria]" in done.stderr + done.stdout
