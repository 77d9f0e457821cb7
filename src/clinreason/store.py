"""The relational store: assessments, API keys (hashed) and the access log.

SQLite under the data dir by default, Postgres when `CLINREASON_DATABASE_URL`
is set; the same SQL runs on both.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from clinreason.config import Settings

Role = Literal["submitter", "prescriber", "admin"]
ROLES: tuple[str, ...] = get_args(Role)

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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    role: Role


def _hash(secret: str) -> str:
    # Keys are 256-bit random secrets, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


class Store:
    def __init__(self, settings: Settings):
        self._lock = threading.Lock()
        if settings.database_url:
            import psycopg

            self._conn: Any = psycopg.Connection.connect(settings.database_url, autocommit=True)
            self._ph = "%s"
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(settings.data_dir / "clinreason.sqlite", check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across crashes, no fsync per commit
            self._ph = "?"
        with self._lock:
            for stmt in SCHEMA:
                self._conn.execute(stmt)
            self._commit()

    def _commit(self) -> None:
        if isinstance(self._conn, sqlite3.Connection):
            self._conn.commit()

    def _exec(self, sql: str, args: tuple | list = ()) -> Any:
        with self._lock:
            cur = self._conn.execute(sql.replace("?", self._ph), args)
            self._commit()
            return cur

    def _one(self, sql: str, args: tuple | list = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql.replace("?", self._ph), args).fetchone()

    def _all(self, sql: str, args: tuple | list = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql.replace("?", self._ph), args).fetchall()

    def ping(self) -> None:
        self._one("SELECT 1")

    # --- assessments ------------------------------------------------------------
    def put(self, record: dict[str, Any]) -> None:
        row = (record["id"], record["audit"]["created_at"], record["updated_at"], record["status"], record["decision"],
               record["input_hash"], json.dumps(record))
        self._exec("INSERT INTO assessments VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                   "updated_at = excluded.updated_at, status = excluded.status, payload = excluded.payload", row)

    def get(self, assessment_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT payload FROM assessments WHERE id = ?", (assessment_id,))
        return json.loads(row[0]) if row else None

    def list(self, status: str | None = None, limit: int = 20, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        total = self._one(f"SELECT count(*) FROM assessments {where}", args)[0]
        rows = self._all(f"SELECT payload FROM assessments {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?", [*args, limit, offset])
        return [json.loads(r[0]) for r in rows], total

    # --- API keys -----------------------------------------------------------------
    def create_key(self, name: str, role: Role) -> str:
        """Create a key and return it once; only its hash is stored."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        self._exec("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, 0)", (key_id, name, role, _hash(secret), _now()))
        return f"cr_{key_id}_{secret}"

    def verify_key(self, presented: str) -> ApiKey | None:
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "cr":
            return None
        row = self._one("SELECT name, role, key_hash, revoked FROM api_keys WHERE key_id = ?", (parts[1],))
        if row is None or row[3] or not hmac.compare_digest(row[2], _hash(parts[2])):
            return None
        return ApiKey(key_id=parts[1], name=row[0], role=row[1])

    def revoke_key(self, key_id: str) -> bool:
        return self._exec("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,)).rowcount > 0

    def list_keys(self) -> list[dict[str, Any]]:
        rows = self._all("SELECT key_id, name, role, created_at, revoked FROM api_keys ORDER BY created_at")
        return [dict(zip(("key_id", "name", "role", "created_at", "revoked"), r, strict=True)) for r in rows]

    # --- access log -----------------------------------------------------------------
    def log_access(self, key: ApiKey, action: str, assessment_id: str | None, status: int) -> None:
        self._exec("INSERT INTO access_log VALUES (?, ?, ?, ?, ?, ?)", (_now(), key.key_id, key.name, action, assessment_id, status))

    def access_log(self, assessment_id: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE assessment_id = ?", [assessment_id]) if assessment_id else ("", [])
        rows = self._all(f"SELECT at, key_id, key_name, action, assessment_id, status FROM access_log {where} ORDER BY at", args)
        return [dict(zip(("at", "key_id", "key_name", "action", "assessment_id", "status"), r, strict=True)) for r in rows]
