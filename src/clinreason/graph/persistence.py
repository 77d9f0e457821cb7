"""LangGraph checkpointer: SQLite under the data dir by default, Postgres when
`CLINREASON_DATABASE_URL` is set."""

from __future__ import annotations

import sqlite3
from typing import Any

from clinreason.config import Settings


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
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across crashes, no fsync per commit
    return SqliteSaver(conn)
