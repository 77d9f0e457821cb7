"""LangGraph checkpointer: SQLite under the data dir by default, Postgres when
`CLINREASON_DATABASE_URL` is set."""

from __future__ import annotations

import sqlite3
from typing import Any

from clinreason.config import Settings


def make_checkpointer(settings: Settings) -> Any:
    if settings.database_url:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        # A pool, not one shared connection: concurrent assessments and sign-offs in one
        # process each borrow their own (PostgresSaver takes a ConnectionPool as its conn).
        pool = ConnectionPool(settings.database_url, min_size=1, max_size=settings.db_pool_size, open=True,
                              kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
        saver = PostgresSaver(pool)
        saver.setup()
        return saver
    from langgraph.checkpoint.sqlite import SqliteSaver

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.data_dir / "checkpoints.sqlite", check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across crashes, no fsync per commit
    return SqliteSaver(conn)
