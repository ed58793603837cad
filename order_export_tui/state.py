"""The state database: what was exported, the run history and the skipped orders.

One SQLite file in WAL mode is the single source of truth that a restarted process, the
daemon and an attached dashboard read. Writes use `BEGIN IMMEDIATE` so a writer never
deadlocks halfway through a transaction. One process at a time drives exports for a
database: `StateLock` (an advisory lock on a file beside it) says which one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exported_order (
    order_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    shipping_status TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    exported_at TEXT NOT NULL,
    run_id INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    new INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    log_file TEXT
);
CREATE TABLE IF NOT EXISTS skipped_tick (
    at TEXT NOT NULL,
    trigger TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS skipped_order (
    order_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_skipped_at TEXT NOT NULL,
    last_tried_at TEXT NOT NULL,
    run_id INTEGER
) WITHOUT ROWID;
"""

RUNNING = "running"
INTERRUPTED_ERROR = "interrupted: the process stopped before the run finished"


@dataclass(frozen=True, slots=True)
class ExportedOrder:
    """What the destination last confirmed for an order."""

    order_id: str
    content_hash: str
    shipping_status: str
    payment_status: str


@dataclass(frozen=True, slots=True)
class SkippedOrder:
    order_id: str
    reason: str
    attempts: int
    first_skipped_at: str
    last_tried_at: str
    run_id: int | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: int
    trigger: str
    started_at: str
    finished_at: str | None
    outcome: str
    counts: dict[str, int]
    error: str | None
    log_file: str | None


COUNT_NAMES = ("read", "new", "updated", "unchanged", "retried", "skipped")


class StateStore:
    """Access to the state database. Not thread-safe: use it from one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode keeps every commit across a process crash; only a power loss can
        # roll back the last commits, which at worst causes a harmless repeat of an upsert.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- exported orders -------------------------------------------------------------

    def exported_orders(self, order_ids: Sequence[str]) -> dict[str, ExportedOrder]:
        """What was last sent for each of these orders (absent ids were never sent)."""
        found: dict[str, ExportedOrder] = {}
        # SQLite allows 32766 host parameters; batches are at most 10000 orders.
        for start in range(0, len(order_ids), 10000):
            chunk = order_ids[start : start + 10000]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT order_id, content_hash, shipping_status, payment_status "
                f"FROM exported_order WHERE order_id IN ({marks})",
                chunk,
            )
            for row in rows:
                found[row[0]] = ExportedOrder(*row)
        return found

    def exported_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM exported_order").fetchone()[0]

    def record_batch(
        self,
        *,
        run_id: int,
        now: datetime,
        exported: Iterable[ExportedOrder],
        skipped: dict[str, str],
        resolved: Iterable[str],
    ) -> None:
        """Record one batch's outcome in one transaction.

        `exported`: orders the destination confirmed; `skipped`: order id -> reason;
        `resolved`: orders that need no export (unchanged), whose old skip is void.
        """
        stamp = now.isoformat()
        exported_rows = [
            (e.order_id, e.content_hash, e.shipping_status, e.payment_status, stamp, run_id)
            for e in exported
        ]
        cleared = [(order_id,) for order_id in resolved]
        cleared.extend((row[0],) for row in exported_rows)
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO exported_order (order_id, content_hash, shipping_status,"
                " payment_status, exported_at, run_id) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (order_id) DO UPDATE SET content_hash = excluded.content_hash,"
                " shipping_status = excluded.shipping_status,"
                " payment_status = excluded.payment_status,"
                " exported_at = excluded.exported_at, run_id = excluded.run_id",
                exported_rows,
            )
            if cleared:
                db.executemany("DELETE FROM skipped_order WHERE order_id = ?", cleared)
            db.executemany(
                "INSERT INTO skipped_order (order_id, reason, attempts, first_skipped_at,"
                " last_tried_at, run_id) VALUES (?, ?, 1, ?, ?, ?)"
                " ON CONFLICT (order_id) DO UPDATE SET reason = excluded.reason,"
                " attempts = skipped_order.attempts + 1,"
                " last_tried_at = excluded.last_tried_at, run_id = excluded.run_id",
                [(order_id, reason, stamp, stamp, run_id) for order_id, reason in skipped.items()],
            )

    # --- skipped orders --------------------------------------------------------------

    def skipped_orders(self, limit: int | None = None) -> list[SkippedOrder]:
        sql = (
            "SELECT order_id, reason, attempts, first_skipped_at, last_tried_at, run_id"
            " FROM skipped_order ORDER BY last_tried_at DESC, order_id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [SkippedOrder(*row) for row in self._db.execute(sql)]

    # --- run requests that were not honoured -----------------------------------------

    def record_skipped_tick(self, *, at: datetime, trigger: str, reason: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO skipped_tick (at, trigger, reason) VALUES (?, ?, ?)",
                (at.isoformat(), trigger, reason),
            )

    def skipped_ticks(self, limit: int = 50) -> list[tuple[str, str, str]]:
        """(at, trigger, reason) of the newest run requests that were skipped."""
        rows = self._db.execute(
            "SELECT at, trigger, reason FROM skipped_tick ORDER BY rowid DESC LIMIT ?", (limit,)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    # --- runs ------------------------------------------------------------------------

    def start_run(self, *, trigger: str, started_at: datetime) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO run (trigger, started_at, outcome) VALUES (?, ?, ?)",
                (trigger, started_at.isoformat(), RUNNING),
            )
        return int(cursor.lastrowid or 0)

    def set_run_log_file(self, run_id: int, log_file: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE run SET log_file = ? WHERE run_id = ?", (log_file, run_id))

    def finish_run(
        self,
        run_id: int,
        *,
        finished_at: datetime,
        outcome: str,
        counts: dict[str, int],
        error: str | None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE run SET finished_at = ?, outcome = ?, read = ?, new = ?, updated = ?,"
                " unchanged = ?, retried = ?, skipped = ?, error = ? WHERE run_id = ?",
                (
                    finished_at.isoformat(),
                    outcome,
                    *(counts[name] for name in COUNT_NAMES),
                    error,
                    run_id,
                ),
            )

    def close_interrupted_runs(self, now: datetime) -> int:
        """Mark runs a dead process left 'running' as failed. Call while holding the lock."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE run SET outcome = 'failed', finished_at = ?, error = ? WHERE outcome = ?",
                (now.isoformat(), INTERRUPTED_ERROR, RUNNING),
            )
        return cursor.rowcount

    def recent_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT run_id, trigger, started_at, finished_at, outcome, read, new, updated,"
            " unchanged, retried, skipped, error, log_file FROM run"
            " ORDER BY run_id DESC LIMIT ?",
            (limit,),
        )
        return [
            RunRecord(
                run_id=row[0],
                trigger=row[1],
                started_at=row[2],
                finished_at=row[3],
                outcome=row[4],
                counts=dict(zip(COUNT_NAMES, row[5:11], strict=True)),
                error=row[11],
                log_file=row[12],
            )
            for row in rows
        ]


class StateLockedError(Exception):
    """Another process drives exports for this state database."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"another order-export process ({holder}) is using {path}")


class StateLock:
    """An advisory lock beside the state database; the kernel frees it if the process dies."""

    def __init__(self, database: Path, *, role: str) -> None:
        self.path = database.with_name(database.name + ".lock")
        self.database = database
        self.role = role
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
            os.close(fd)
            raise StateLockedError(self.database, describe_holder(holder)) from None
        info = {
            "pid": os.getpid(),
            "role": self.role,
            "since": datetime.now().astimezone().isoformat(timespec="seconds"),
            "argv": " ".join(sys.argv[:3]),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def describe_holder(raw: str) -> str:
    try:
        info = json.loads(raw)
        return f"pid {info['pid']}, order-export {info['role']}, since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that did not say who it is"
