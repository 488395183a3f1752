"""The simulated vendor's own books, in its own SQLite file: batches, assignments, a log.

It survives restarts of the client (and of the vendor itself). The log is the vendor's
side of the ledger that tests and the chaos bench compare crowdbridge's database with:
submit requests, batches created, judgments produced, duplicates and malformed records sent.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

__all__ = ["VendorState"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    id TEXT PRIMARY KEY, external_id TEXT UNIQUE NOT NULL, kind TEXT NOT NULL, scale INTEGER NOT NULL,
    tasks_total INTEGER NOT NULL, expected INTEGER NOT NULL, created_at REAL NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0, reward REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS assignment (
    id TEXT PRIMARY KEY, batch_id TEXT NOT NULL, task_id TEXT NOT NULL, rater_id TEXT NOT NULL,
    label TEXT NOT NULL, truth TEXT NOT NULL, started_at REAL NOT NULL, due_at REAL NOT NULL,
    cost REAL NOT NULL, seq INTEGER, cancelled INTEGER NOT NULL DEFAULT 0, body TEXT);
CREATE INDEX IF NOT EXISTS ix_assignment_batch_seq ON assignment(batch_id, seq);
CREATE INDEX IF NOT EXISTS ix_assignment_batch_due ON assignment(batch_id, due_at);
CREATE TABLE IF NOT EXISTS delivery (
    batch_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (batch_id, seq));
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS task_truth (task_id TEXT PRIMARY KEY, truth TEXT NOT NULL);
"""


class VendorState:
    """Thread-safe access to the vendor's SQLite file (one lock; the vendor is one process)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(assignment)")}
        if "body" not in columns:  # a state file from before delivery bodies were built at submit time
            self._conn.execute("ALTER TABLE assignment ADD COLUMN body TEXT")
        self._lock = threading.Lock()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def bump(self, conn: sqlite3.Connection, name: str, by: int = 1) -> None:
        conn.execute("INSERT INTO counter(name, value) VALUES (?, ?) "
                     "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, by))

    def counters(self) -> dict[str, int]:
        with self.tx() as conn:
            return dict(conn.execute("SELECT name, value FROM counter").fetchall())

    def batch_row(self, conn: sqlite3.Connection, batch_id: str) -> dict[str, Any] | None:
        row = conn.execute("SELECT id, external_id, kind, scale, tasks_total, expected, created_at, cancelled, "
                           "reward FROM batch WHERE id = ?", (batch_id,)).fetchone()
        if row is None:
            return None
        keys = ("id", "external_id", "kind", "scale", "tasks_total", "expected", "created_at", "cancelled", "reward")
        return dict(zip(keys, row, strict=True))

    def ledger(self) -> dict[str, Any]:
        """The vendor's side of the books: per batch how many times it was created, judgments produced."""
        with self.tx() as conn:
            produced = conn.execute("SELECT COUNT(*) FROM assignment WHERE seq IS NOT NULL").fetchone()[0]
            ids = [r[0] for r in conn.execute("SELECT id FROM assignment WHERE seq IS NOT NULL ORDER BY id")]
            creations = dict(conn.execute(
                "SELECT external_id, COUNT(*) FROM batch GROUP BY external_id").fetchall())
        counters = self.counters()
        return {"counters": counters, "judgments_produced": produced, "produced_ids": ids,
                "creations_per_external_id": creations}

    @staticmethod
    def dumps(obj: Any) -> str:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
