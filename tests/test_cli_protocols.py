"""Protocol selection on the command line: `clinreason protocols`, `assess --protocol`."""

from __future__ import annotations

import json

from cli_helpers import cli

from clinreason.samples import load_sample


def test_protocols_lists_both() -> None:
    r = cli("protocols", "--json")
    assert r.returncode == 0, r.stderr
    ids = {p["id"]: p for p in json.loads(r.stdout)}
    assert set(ids) == {"uti-cystitis", "lyme-pep"}
    assert [p["id"] for p in ids["lyme-pep"]["profiles"]] == ["CA-ON", "US-IDSA"]
    table = cli("protocols")
    assert table.returncode == 0 and "recommend_prophylaxis" in table.stdout and "(default)" in table.stdout


def test_assess_a_lyme_file_with_protocol(tmp_path) -> None:
    data = load_sample("lyme-child-weight-dosing-us")
    del data["protocol"]
    path = tmp_path / "bite.json"
    path.write_text(json.dumps(data))
    r = cli("assess", str(path), "--protocol", "lyme-pep", "--mode", "deterministic", "--json")
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    assert a["decision"] == "recommend_prophylaxis" and a["recommendation"]["dose"] == "100 mg"
    # Without --protocol the same file is read as the default protocol and refused, field by field.
    r = cli("assess", str(path), "--mode", "deterministic")
    assert r.returncode == 2 and "tick" in r.stderr


def test_protocol_option_must_agree_with_the_file(tmp_path) -> None:
    path = tmp_path / "bite.json"
    path.write_text(json.dumps(load_sample("lyme-adult-prophylaxis")))
    r = cli("assess", str(path), "--protocol", "uti-cystitis", "--mode", "deterministic")
    assert r.returncode == 2 and "lyme-pep" in r.stderr


def test_samples_show_their_protocol() -> None:
    r = cli("samples")
    assert r.returncode == 0 and "lyme-pep" in r.stdout and "uti-cystitis" in r.stdout
