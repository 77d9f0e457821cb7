"""A persistent key -> value cache: sqlite (WAL, shared by every process on the
data dir) behind a per-process memory layer. Used for query embeddings and for
search results, so a process whose work was all seen before loads no model."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class SqliteCache(Generic[V]):
    def __init__(self, path: Path, table: str, encode: Callable[[V], Any], decode: Callable[[Any], V]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB)")
        self._db.commit()
        self._table, self._encode, self._decode = table, encode, decode
        self._mem: dict[str, V] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        if key in self._mem:
            return self._mem[key]
        with self._lock:
            row = self._db.execute(f"SELECT value FROM {self._table} WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value = self._mem[key] = self._decode(row[0])
        return value

    def has(self, key: str) -> bool:
        """Whether the key is stored, without decoding its value."""
        if key in self._mem:
            return True
        with self._lock:
            return self._db.execute(f"SELECT 1 FROM {self._table} WHERE key = ?", (key,)).fetchone() is not None

    def put(self, key: str, value: V) -> None:
        self._mem[key] = value
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO {self._table} VALUES (?, ?)", (key, self._encode(value)))
            self._db.commit()
