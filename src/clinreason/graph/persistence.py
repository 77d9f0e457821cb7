"""Checkpointer and assessment store: SQLite under the data dir by default,
Postgres when `CLINREASON_DATABASE_URL` is set."""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

from clinreason.config import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS assessments (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL,
    decision TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    payload TEXT NOT NULL
)
"""


def make_checkpointer(settings: Settings) -> Any:
    if settings.database_url:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        conn = psycopg.Connection.connect(settings.database_url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        saver = PostgresSaver(conn)
        saver.setup()
        return saver
    from langgraph.checkpoint.sqlite import SqliteSaver

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.data_dir / "checkpoints.sqlite", check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    return SqliteSaver(conn)


class AssessmentStore:
    """Assessments as JSON rows; the same SQL on SQLite and Postgres."""

    def __init__(self, settings: Settings):
        self._lock = threading.Lock()
        if settings.database_url:
            import psycopg

            self._conn: Any = psycopg.Connection.connect(settings.database_url, autocommit=True)
            self._ph = "%s"
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(settings.data_dir / "assessments.sqlite", check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._ph = "?"
        with self._lock:
            self._conn.execute(SCHEMA)
            self._commit()

    def _commit(self) -> None:
        if isinstance(self._conn, sqlite3.Connection):
            self._conn.commit()

    def _sql(self, text: str) -> str:
        return text.replace("?", self._ph)

    def put(self, record: dict[str, Any]) -> None:
        row = (record["id"], record["audit"]["created_at"], record["updated_at"], record["status"], record["decision"],
               record["input_hash"], json.dumps(record))
        with self._lock:
            self._conn.execute(self._sql(
                "INSERT INTO assessments VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "updated_at = excluded.updated_at, status = excluded.status, payload = excluded.payload"), row)
            self._commit()

    def get(self, assessment_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(self._sql("SELECT payload FROM assessments WHERE id = ?"), (assessment_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, status: str | None = None, limit: int = 20, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        with self._lock:
            total = self._conn.execute(self._sql(f"SELECT count(*) FROM assessments {where}"), args).fetchone()[0]
            rows = self._conn.execute(
                self._sql(f"SELECT payload FROM assessments {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?"),
                [*args, limit, offset],
            ).fetchall()
        return [json.loads(r[0]) for r in rows], total
