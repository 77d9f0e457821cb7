"""The `clinreason` command, run as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import cli
from patients import make_patient


def test_sample_json_output():
    r = cli("assess", "--sample", "raas-nitrofurantoin-allergy", "--mode", "deterministic", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["decision"] == "recommend_treatment"
    assert data["recommendation"]["agent"] == "fosfomycin"
    assert data["recommendation"]["dose"] == "3 g"


def test_human_output_names_decision_and_exclusions():
    r = cli("assess", "--sample", "warfarin", "--mode", "deterministic")
    assert r.returncode == 0, r.stderr
    assert "recommend_treatment" in r.stdout and "EX-WARFARIN" in r.stdout


def test_file_input_and_out_dir(tmp_path: Path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"name": "wrapped like utiplayground", "patient": make_patient(red_flags={"fever": True})}))
    r = cli("assess", str(f), "--mode", "deterministic", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "out" / "assessment.json").read_text())
    assert saved["decision"] == "refer_urgent"


def test_bad_input_exits_2_with_field_errors(tmp_path: Path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(make_patient(age=300, sex="male", pregnancy_status="pregnant")))
    r = cli("assess", str(f), "--mode", "deterministic")
    assert r.returncode == 2
    assert "age" in r.stderr and "pregnancy_status" in r.stderr


def test_malformed_json_exits_2(tmp_path: Path):
    f = tmp_path / "bad.json"
    f.write_text("{not json")
    r = cli("assess", str(f))
    assert r.returncode == 2 and "not valid JSON" in r.stderr


def test_unknown_sample_exits_2():
    r = cli("assess", "--sample", "nope")
    assert r.returncode == 2 and "uncomplicated" in r.stderr


def test_samples_listed():
    r = cli("samples")
    assert r.returncode == 0 and "no-safe-option" in r.stdout


def test_show_reads_a_stored_assessment_and_its_report(kb_index):
    # Nitrofurantoin allergy, and lisinopril rules out TMP-SMX and trimethoprim: fosfomycin awaits sign-off.
    r = cli("assess", "--sample", "raas-nitrofurantoin-allergy", "--json")
    assert r.returncode == 0, r.stderr
    stored = json.loads(r.stdout)
    shown = cli("show", stored["id"])
    assert shown.returncode == 0, shown.stderr
    assert stored["recommendation"]["agent"] == "fosfomycin" and stored["status"] == "awaiting_signoff"
    assert stored["decision"] in shown.stdout and "fosfomycin" in shown.stdout and "EX-HYPERKALEMIA" in shown.stdout
    report = cli("show", stored["id"], "--report")
    assert report.returncode == 0 and report.stdout == stored["report_markdown"]
    missing = cli("show", "no-such-assessment")
    assert missing.returncode == 2 and "no assessment 'no-such-assessment'" in missing.stderr


def test_signoff_with_blocking_checks_needs_acknowledge(tmp_path: Path, kb_index):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(make_patient(age=17, history={"meds": ["Zorbaxol 20 mg daily"], "allergies": ["nitrofurantoin"]})))
    r = cli("assess", str(f), "--json", timeout=180)
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    assert a["plan"]["option"] == "tmp_smx" and a["plan"]["blocking_checks"][0]["entry"] == "Zorbaxol 20 mg daily"
    refused = cli("signoff", a["id"], "--action", "approve", "--prescriber", "RPh-9", timeout=180)
    assert refused.returncode == 2
    assert "blocking check(s) not acknowledged" in refused.stderr and "--acknowledge 'Zorbaxol 20 mg daily'" in refused.stderr
    signed = cli("signoff", a["id"], "--action", "approve", "--prescriber", "RPh-9", "--acknowledge", "Zorbaxol 20 mg daily", "--json", timeout=180)
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["signoff"]["acknowledged"] == ["Zorbaxol 20 mg daily"]


def test_human_output_shows_blocking_checks_first_and_unverified_agents(tmp_path: Path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(make_patient(history={"allergies": ["Frobnicol (hives)"]})))
    r = cli("assess", str(f), "--mode", "deterministic")
    assert r.returncode == 0, r.stderr
    assert r.stdout.index("Blocking checks") < r.stdout.index("Rules fired")
    assert "allowed, unverified" in r.stdout and "history.allergies[0]" in r.stdout
