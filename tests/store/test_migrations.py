"""Alembic migrations: a fresh store reaches the head schema; a release-0.1 data directory
upgrades in place, keeps its rows and keys, and its awaiting assessment can still be signed off."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import release_0_1
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from clinreason.config import Settings
from clinreason.samples import load_sample
from clinreason.store import Store, migrate
from clinreason.store.schema import metadata


def _cli(*args: str, data_dir: Path | None = None, database_url: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"CLINREASON_DATA_DIR": str(data_dir)} if data_dir else {}),
           **({"CLINREASON_DATABASE_URL": database_url} if database_url else {})}
    return subprocess.run([sys.executable, "-m", "clinreason.cli", *args], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def _columns(engine) -> dict[str, set[str]]:
    insp = inspect(engine)
    return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names() if t != "alembic_version"}


def test_head_constant_is_alembics_head():
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.SCRIPTS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == migrate.HEAD


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_fresh_store_has_exactly_the_head_schema(backend, tmp_path, request):
    settings = Settings(data_dir=tmp_path) if backend == "sqlite" else Settings(database_url=request.getfixturevalue("pg_url"))
    store = Store(settings)
    assert store.revision() == migrate.HEAD
    assert _columns(store.engine) == {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}
    assert store.upgrade() == (migrate.HEAD, migrate.HEAD)  # a second upgrade is a no-op
    store.close()


def _release_0_1_data_dir(offline_pipeline, tmp_path: Path) -> tuple[Path, dict, dict[str, str]]:
    """A data dir as release 0.1 left it: its store (own DDL, no Alembic) with keys, an access row and an
    assessment awaiting sign-off whose graph checkpoint is in the checkpointer."""
    record = offline_pipeline.store.get(offline_pipeline.run(load_sample("warfarin")).id)
    record["audit"].pop("submitted_by")  # 0.1 did not record it
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    src = Path(offline_pipeline.settings.data_dir)
    with sqlite3.connect(src / "checkpoints.sqlite") as live, sqlite3.connect(data_dir / "checkpoints.sqlite") as copy:
        live.backup(copy)  # a consistent copy of the WAL database
    (data_dir / "index").symlink_to(src / "index")  # the built knowledge index, not rebuilt here
    conn = sqlite3.connect(data_dir / "clinreason.sqlite")
    release_0_1.create(conn)
    keys = {role: release_0_1.add_key(conn, f"old{role[:3]}", f"old-{role}", role, f"secret-{role}")
            for role in ("submitter", "prescriber", "admin")}
    release_0_1.add_assessment(conn, record)
    release_0_1.add_access(conn, "oldsub", "old-submitter", "create", record["id"], 201)
    conn.commit()
    conn.close()
    return data_dir, record, keys


def test_a_release_0_1_data_dir_upgrades_in_place(offline_pipeline, tmp_path):
    from clinreason.pipeline import Pipeline

    data_dir, record, keys = _release_0_1_data_dir(offline_pipeline, tmp_path)
    assert _cli("db", "current", data_dir=data_dir).returncode == 1  # behind: says so, changes nothing
    assert Store(Settings(data_dir=data_dir), upgrade=False).revision() == migrate.RELEASE_0_1

    r = _cli("db", "upgrade", data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    assert f"store at revision {migrate.HEAD} (was {migrate.RELEASE_0_1})" in r.stdout
    assert _cli("db", "current", data_dir=data_dir).returncode == 0

    store = Store(Settings(data_dir=data_dir), upgrade=False)
    # Keys keep working: submitters and prescribers at the site `default`, admins global.
    assert store.verify_key(keys["submitter"]).site == "default"
    assert store.verify_key(keys["prescriber"]).site == "default"
    assert store.verify_key(keys["admin"]).site is None
    # The assessment belongs to that site, and its history is kept.
    assert store.get(record["id"], site="default")["decision"] == record["decision"]
    assert store.get(record["id"], site="elsewhere") is None
    assert [(e["key_id"], e["action"], e["status"]) for e in store.access_log(record["id"])] == [("oldsub", "create", 201)]
    # The assessment awaiting sign-off in 0.1 is signed off after the upgrade, once.
    pipeline = Pipeline(Settings(data_dir=data_dir))
    signed = pipeline.signoff(record["id"], "approve", "old-prescriber (oldpre)")
    assert signed.status == "final" and signed.signoff.action == "approve"
    assert store.status_of(record["id"]) == ("final", 2)


def test_the_upgrade_keeps_rows_on_postgres(pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        release_0_1.create(conn)
        key = release_0_1.add_key(conn, "pgsub", "pg-submitter", "submitter", "pg-secret", ph="%s")
        record = {"id": "a" * 32, "audit": {"created_at": "2026-11-01T09:00:00"}, "updated_at": "2026-11-01T09:00:00",
                  "status": "final", "decision": "refer_urgent", "input_hash": "0" * 64}
        release_0_1.add_assessment(conn, record, ph="%s")
    r = _cli("db", "upgrade", database_url=pg_url)
    assert r.returncode == 0, r.stderr
    store = Store(Settings(database_url=pg_url), upgrade=False)
    assert store.revision() == migrate.HEAD
    assert store.verify_key(key).site == "default"
    assert store.list(site="default")[1] == 1 and store.owner("a" * 32) == ("default", None)
    store.close()


def test_two_processes_upgrading_one_store_at_once_both_succeed(tmp_path):
    """`serve --workers 2` opens the store in two processes at the same moment."""
    procs = [subprocess.Popen([sys.executable, "-m", "clinreason.cli", "db", "upgrade"], env={**os.environ, "CLINREASON_DATA_DIR": str(tmp_path)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill() if p.poll() is None else None
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted("already current" in out for out, _ in outs) == [False, True]
    engine = create_engine(f"sqlite:///{tmp_path / 'clinreason.sqlite'}")
    assert set(_columns(engine)) == {t.name for t in metadata.sorted_tables}
    shutil.rmtree(tmp_path, ignore_errors=True)
