"""A SQLite fenced store over one file, with a log table and a probe of its write lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from zkelect import FencingToken, SQLiteFencedStore

__all__ = ["LoggedStore"]


class LoggedStore:
    """``store`` fences the file; fenced blocks append epochs to its table ``log``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = SQLiteFencedStore(path)
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, epoch INTEGER)")

    @staticmethod
    def append(conn: sqlite3.Connection, epoch: int) -> None:
        conn.execute("INSERT INTO log (epoch) VALUES (?)", (epoch,))

    def logged(self) -> list[int]:
        with sqlite3.connect(self.path) as conn:
            return [int(row[0]) for row in conn.execute("SELECT epoch FROM log ORDER BY id")]

    def locked(self) -> bool:
        """Whether another writer would have to wait now (a fenced write that may not wait)."""
        probe = FencingToken(1, "/probe", "probe", 0x1)
        try:
            SQLiteFencedStore(self.path, busy_timeout=0).write("probe", probe, lambda c: None)
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return True
        return False
