"""Bring a store's schema to the head revision with Alembic, safely from many processes.

- An empty database is upgraded from nothing.
- A database from release 0.1 (its tables, no `alembic_version`) is stamped at
  revision 0001, the schema that release created by hand, then upgraded.
- Several processes may start at once (`serve --workers 2`, two servers on one
  Postgres): the upgrade runs under a lock (a Postgres advisory lock, or a file
  lock beside the SQLite database), and each process re-reads the revision once
  it holds the lock.

Alembic is imported only when an upgrade is due: a current store costs one query.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

HEAD = "0003"  # tests/store/test_migrations.py checks this is Alembic's head
RELEASE_0_1 = "0001"
SCRIPTS = Path(__file__).parent / "migrations"
_PG_LOCK = 0x636C696E  # "clin": the advisory lock key for migrations


def current_revision(conn: Connection) -> str | None:
    """The stored revision; RELEASE_0_1 for a pre-Alembic release-0.1 database; None if empty."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return RELEASE_0_1 if "assessments" in tables else None


@contextlib.contextmanager
def _migration_lock(engine: Engine, lock_file: Path | None) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK})
                conn.commit()
        return
    assert lock_file is not None
    with lock_file.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def upgrade(engine: Engine, lock_file: Path | None = None) -> tuple[str | None, str]:
    """Upgrade to HEAD; returns (revision before, revision after)."""
    with _migration_lock(engine, lock_file), engine.begin() as conn:
        before = current_revision(conn)
        if before == HEAD:
            return before, HEAD
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(SCRIPTS))
        cfg.attributes["connection"] = conn
        if before == RELEASE_0_1 and not inspect(conn).has_table("alembic_version"):
            command.stamp(cfg, RELEASE_0_1)
        command.upgrade(cfg, "head")
        return before, current_revision(conn) or HEAD


def is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        return current_revision(conn) == HEAD
