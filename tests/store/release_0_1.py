"""The store as release 0.1 wrote it (hand-written SQL, no Alembic), frozen for the upgrade tests.

The DDL is release 0.1's, verbatim; the inserts write rows the way that release did.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS assessments (
        id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, status TEXT NOT NULL,
        decision TEXT NOT NULL, input_hash TEXT NOT NULL, payload TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS api_keys (
        key_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, key_hash TEXT NOT NULL,
        created_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS access_log (
        at TEXT NOT NULL, key_id TEXT NOT NULL, key_name TEXT NOT NULL, action TEXT NOT NULL,
        assessment_id TEXT, status INTEGER NOT NULL)""",
]


def create(conn: Any) -> None:
    for stmt in SCHEMA:
        conn.execute(stmt)


def add_key(conn: Any, key_id: str, name: str, role: str, secret: str, ph: str = "?") -> str:
    conn.execute(f"INSERT INTO api_keys VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, 0)",
                 (key_id, name, role, hashlib.sha256(secret.encode()).hexdigest(), "2026-11-01T09:00:00.000+00:00"))
    return f"cr_{key_id}_{secret}"


def add_assessment(conn: Any, record: dict[str, Any], ph: str = "?") -> None:
    row = (record["id"], record["audit"]["created_at"], record["updated_at"], record["status"], record["decision"],
           record["input_hash"], json.dumps(record))
    conn.execute(f"INSERT INTO assessments VALUES ({', '.join([ph] * 7)})", row)


def add_access(conn: Any, key_id: str, name: str, action: str, assessment_id: str | None, status: int, ph: str = "?") -> None:
    conn.execute(f"INSERT INTO access_log VALUES ({', '.join([ph] * 6)})",
                 ("2026-11-01T09:01:00.000+00:00", key_id, name, action, assessment_id, status))
