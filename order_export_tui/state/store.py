"""The state database: what was exported, the run history and the skipped orders.

One SQLite file in WAL mode is the single source of truth that a restarted process, the
daemon and an attached dashboard read. Writes use `BEGIN IMMEDIATE` so a writer never
deadlocks halfway through a transaction. One process at a time drives exports for a
database: `StateLock` (an advisory lock on a file beside it) says which one.

The file holds customer data: it is created 0600 (SQLite gives its -wal and -shm the same
mode) in folders created 0700. A file that is not a usable database is never written to:
opening it raises `StateDatabaseCorruptError`, which names the file and what to do.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from order_export_tui.private_files import create_private_file, make_private_dirs, open_private

SCHEMA_VERSION = 2  # 2: exported_order.order_date
# Webhook payloads (order documents: names, e-mail and postal addresses) of events that are
# finished (delivered, skipped, expired) are blanked this long after they finished. The event's
# row stays, so a repeat of it is still recognised and answered with its first event_id.
WEBHOOK_PAYLOAD_RETENTION_DAYS = 7
REALTIME_GRACE = timedelta(days=1)  # how long the ERP may take to list an order sent live
_SQLITE_MAGIC = b"SQLite format 3\x00"

# The real-time events by state, kept by triggers in the writer's own transaction: every
# status refresh reads it, and counting a year of events there took 23 ms each time.
_TALLY_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS realtime_tally_insert AFTER INSERT ON realtime_event
    BEGIN
        INSERT INTO realtime_tally (status, events) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET events = events + 1;
    END""",
    """CREATE TRIGGER IF NOT EXISTS realtime_tally_update AFTER UPDATE OF status ON realtime_event
    WHEN OLD.status != NEW.status
    BEGIN
        UPDATE realtime_tally SET events = events - 1 WHERE status = OLD.status;
        INSERT INTO realtime_tally (status, events) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET events = events + 1;
    END""",
    """CREATE TRIGGER IF NOT EXISTS realtime_tally_delete AFTER DELETE ON realtime_event
    BEGIN
        UPDATE realtime_tally SET events = events - 1 WHERE status = OLD.status;
    END""",
)

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
    run_id INTEGER, -- the last run that sent it, NULL when only ever sent in real time
    document BLOB,
    order_date TEXT
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
CREATE TABLE IF NOT EXISTS realtime_event (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    order_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS realtime_event_by_status ON realtime_event (status, event_id);
CREATE TABLE IF NOT EXISTS realtime_tally (
    status TEXT PRIMARY KEY,
    events INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payment_override (
    order_id TEXT PRIMARY KEY,
    payment_status TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    received_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sent_product (
    scope TEXT NOT NULL,
    sku TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    PRIMARY KEY (scope, sku)
) WITHOUT ROWID;
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
INTERRUPTED_ERROR = (
    "interrupted: the process stopped (or could not record the end of the run) before the run"
    " finished"
)


class StateUnusableError(Exception):
    """The state database (or its folder or lock) cannot be used; the message says what to do."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(message)


class StateDatabaseCorruptError(StateUnusableError):
    """The file is there but is not a readable SQLite database; it is left untouched."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            path,
            f"{path}: the state database is {problem}. It was left untouched. Restore it from a"
            " backup, or move it aside to start with an empty history (every order in the"
            " export window is then sent again).",
        )


class StoragePathError(StateUnusableError):
    """A path of the state database is the wrong kind of file (a folder, say) or unreadable."""


class StateWriteError(Exception):
    """A write to the state database failed (a full disk, an I/O error); nothing of that
    transaction was recorded."""

    def __init__(self, path: Path, error: sqlite3.Error) -> None:
        self.path = path
        reason = str(error)
        hint = " (free some disk space)" if "full" in reason else ""
        super().__init__(f"cannot write the state database {path}: {reason}{hint}")


def _path_problem(path: Path, what: str, error: OSError) -> StoragePathError:
    """An OSError from preparing `path` as the message an operator can act on."""
    if isinstance(error, IsADirectoryError):
        detail = f"{path}: the {what} is a folder; remove it or change storage.state_database"
    elif isinstance(error, NotADirectoryError | FileExistsError):
        culprit = Path(error.filename) if error.filename else path
        where = "" if culprit == path else f" (for the {what} {path})"
        detail = (
            f"{culprit}: is a file where a folder is needed{where}; move that file or change"
            " storage.state_database"
        )
    elif isinstance(error, PermissionError):
        detail = f"{path}: no permission to use the {what}; fix its owner or mode"
    else:
        detail = f"{path}: cannot use the {what}: {error.strerror or error}"
    return StoragePathError(path, detail)


def _check_database_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that is not (or no longer) a whole database:
    not a regular file, a foreign or broken header, or shorter than its header says."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise _path_problem(path, "state database", error) from None
    if path.is_dir():
        raise _path_problem(path, "state database", IsADirectoryError())
    if not path.is_file():
        raise StoragePathError(
            path, f"{path}: the state database is not a regular file; change storage.state_database"
        )
    if info.st_size == 0:
        return  # SQLite makes an empty file a new database
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except OSError as error:
        raise _path_problem(path, "state database", error) from None
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise StateDatabaseCorruptError(path, "not an SQLite database (its header is wrong)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise StateDatabaseCorruptError(path, "damaged (its header gives no valid page size)")
    pages = int.from_bytes(header[28:32], "big")
    header_size_valid = header[24:28] == header[92:96] and pages > 0
    wal = path.with_name(path.name + "-wal")
    # With a write-ahead log the file may lag behind its header until the log is replayed.
    wal_pending = wal.exists() and wal.stat().st_size > 0
    if header_size_valid and not wal_pending and pages * page_size > info.st_size:
        raise StateDatabaseCorruptError(
            path, f"truncated ({info.st_size} bytes of {pages * page_size})"
        )


def _open_problem(path: Path, error: sqlite3.Error) -> StateUnusableError:
    name = getattr(error, "sqlite_errorname", "")
    text = str(error)
    corrupt = "malformed" in text or "not a database" in text
    if corrupt or name in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return StateDatabaseCorruptError(path, f"damaged ({error})")
    if name == "SQLITE_CANTOPEN":
        return StoragePathError(path, f"{path}: cannot open the state database ({error})")
    return StateUnusableError(path, f"{path}: cannot use the state database: {error}")


def order_date_key(order_date: object) -> str | None:
    """An order document's `order_date` as the state stores it: the instant in UTC to the
    second, 'YYYY-MM-DDTHH:MM:SSZ', so that comparing texts compares instants whatever
    offset the ERP wrote. None for what is not an ISO 8601 time with an offset.

    Seconds are cut, never rounded: against a whole-second bound (the window starts at a
    midnight) an order compares as its exact time does."""
    if not isinstance(order_date, str):
        return None
    try:
        moment = datetime.fromisoformat(order_date)
        if moment.tzinfo is None:
            return None
        utc = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    return utc.isoformat(timespec="seconds") + "Z"


def _instant_key(moment: datetime) -> str:
    """A time as `order_date_key` stores order dates (a window's first moment, say)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


@dataclass(frozen=True, slots=True)
class ExportedOrder:
    """What the destination last confirmed for an order. `document` (the order document as
    JSON) is written with it, and read only where needed (`exported_document`).
    `order_date`: the document's `order_date` (what the export window counts by)."""

    order_id: str
    content_hash: str
    shipping_status: str
    payment_status: str
    document: bytes | None = None
    order_date: str | None = None


# Real-time event kinds and states.
ORDER_COMPLETED = "order_completed"
PAYMENT_STATUS = "payment_status"
QUEUED = "queued"  # waiting for delivery
HELD = "held"  # a payment status for an order not known yet
DELIVERED = "delivered"
SUPERSEDED = "superseded"  # a payment status older than the one already applied: no effect
SKIPPED = "skipped"
EXPIRED = "expired"  # held longer than max_days_to_export


@dataclass(frozen=True, slots=True)
class RealtimeEvent:
    event_id: int
    kind: str
    order_id: str
    payload: bytes
    received_at: str
    attempts: int


@dataclass(frozen=True, slots=True)
class RealtimeEventRecord:
    """What became of one accepted webhook event, without its payload (customer data)."""

    event_id: int
    kind: str  # ORDER_COMPLETED | PAYMENT_STATUS
    order_id: str
    received_at: str
    status: str  # QUEUED | HELD | DELIVERED | SUPERSEDED | SKIPPED | EXPIRED
    attempts: int
    last_error: str | None
    finished_at: str | None


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

    def __init__(self, path: Path, *, durable: bool = False) -> None:
        """`durable`: every commit reaches the disk before it returns (the webhook intake's
        connection: an event answered 202 must survive a power loss too). A durable store
        may be handed to one worker thread (the intake commits there, so that the event loop
        does not wait for the disk); still only one thread at a time uses it."""
        self.path = path
        try:
            make_private_dirs(path.parent)
        except OSError as error:
            raise _path_problem(path, "state database", error) from None
        _check_database_file(path)
        try:
            if not path.exists():
                create_private_file(path)  # SQLite gives -wal and -shm this file's mode
        except OSError as error:
            raise _path_problem(path, "state database", error) from None
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=not durable
            )
        except sqlite3.Error as error:
            raise _open_problem(path, error) from None
        try:
            self._open(durable)
        except (sqlite3.Error, StateWriteError) as error:
            self._db.close()
            cause = error.__cause__ if isinstance(error, StateWriteError) else error
            if isinstance(cause, sqlite3.Error):
                raise _open_problem(path, cause) from None
            raise

    def _open(self, durable: bool) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode keeps every commit across a process crash; only a power loss can
        # roll back the last commits, which at worst causes a harmless repeat of an upsert.
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.transaction():
            had_tally = self._has_table("realtime_tally")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            for trigger in _TALLY_TRIGGERS:
                self._db.execute(trigger)
            if not had_tally:  # a database from before the tally: count once
                self._db.execute(
                    "INSERT INTO realtime_tally (status, events)"
                    " SELECT status, count(*) FROM realtime_event GROUP BY status"
                )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(exported_order)")}
            if "document" not in columns:  # a database from before real-time delivery
                self._db.execute("ALTER TABLE exported_order ADD COLUMN document BLOB")
            if "order_date" not in columns:  # a database from before the window count
                self._db.execute("ALTER TABLE exported_order ADD COLUMN order_date TEXT")
                self._fill_order_dates()
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS exported_order_by_date ON exported_order (order_date)"
            )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                " WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
                (str(SCHEMA_VERSION),),
            )

    def _has_table(self, name: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def _fill_order_dates(self) -> None:
        """Order dates of the rows that keep their document (those sent in real time), in
        the migration's transaction: a crash leaves the file as it was, and the next open
        migrates it again. Rows a run exported keep no document: the next complete run fills
        theirs as it reads them (`record_batch`'s `seen`). A document that is not JSON is
        left alone."""
        rows = self._db.execute(
            "SELECT order_id, json_extract(CAST(document AS TEXT), '$.order_date')"
            " FROM exported_order WHERE document IS NOT NULL"
            " AND json_valid(CAST(document AS TEXT))"
        ).fetchall()
        dated = [(key, order_id) for order_id, value in rows if (key := order_date_key(value))]
        self._db.executemany("UPDATE exported_order SET order_date = ? WHERE order_id = ?", dated)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; an SQLite failure in it is a `StateWriteError` (the real
        reason, never one from the rollback that follows it)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StateWriteError(self.path, error) from error
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as error:
            # SQLite may have rolled back already (SQLITE_FULL does): a second ROLLBACK would
            # fail and hide the error that matters.
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise StateWriteError(self.path, error) from error
            raise

    # --- exported orders -------------------------------------------------------------

    def _rows_for_ids(self, select: str, ids: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Rows of `select ... WHERE order_id IN (<ids>)`, in chunks: SQLite allows 32766
        host parameters per statement."""
        for start in range(0, len(ids), 10000):
            chunk = ids[start : start + 10000]
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(f"{select} WHERE order_id IN ({marks})", chunk)

    def exported_orders(self, order_ids: Sequence[str]) -> dict[str, ExportedOrder]:
        """What was last sent for each of these orders (absent ids were never sent)."""
        rows = self._rows_for_ids(
            "SELECT order_id, content_hash, shipping_status, payment_status FROM exported_order",
            order_ids,
        )
        return {row[0]: ExportedOrder(*row) for row in rows}

    def exported_document(self, order_id: str) -> bytes | None:
        """The order document (JSON) the destination last confirmed, None when never sent."""
        row = self._db.execute(
            "SELECT document FROM exported_order WHERE order_id = ?", (order_id,)
        ).fetchone()
        return None if row is None else row[0]

    def exported_count(self, since: datetime | None = None) -> int:
        """How many orders the destination holds as last confirmed; with `since` (the
        export window's first moment), only those dated from then on. An order whose date is
        not known yet (exported before the state kept dates) is not counted in a window."""
        if since is None:
            return int(self._db.execute("SELECT COUNT(*) FROM exported_order").fetchone()[0])
        row = self._db.execute(
            "SELECT COUNT(*) FROM exported_order WHERE order_date >= ?", (_instant_key(since),)
        ).fetchone()
        return int(row[0])

    def forget_unread(self, *, since: datetime, started_at: datetime, read: set[str]) -> int:
        """After a run that read every order of its window (dated from `since` on): forget
        the exported orders dated in that window that the run did not read, because the ERP
        no longer has them. Only those exported before the run started (`started_at`), and
        of those sent in real time only, the ones sent over a day before: such an order may
        not have reached the ERP yet. Nothing at the destination changes. Returns how many
        were forgotten."""
        with self.transaction() as db:
            # The ids alone come from the date index; only the few unread rows are looked up.
            rows = db.execute(
                "SELECT order_id FROM exported_order WHERE order_date >= ?",
                (_instant_key(since),),
            )
            unread = [order_id for (order_id,) in rows if order_id not in read]
            # An order the webstore sent in real time that no run has sent may not be in the
            # ERP yet: it is forgotten only once it has had a day to get there.
            realtime_before = started_at - REALTIME_GRACE
            gone = [
                (order_id,)
                for order_id, exported_at, run_id in self._rows_for_ids(
                    "SELECT order_id, exported_at, run_id FROM exported_order", unread
                )
                if datetime.fromisoformat(exported_at)
                < (started_at if run_id is not None else realtime_before)
            ]
            db.executemany("DELETE FROM exported_order WHERE order_id = ?", gone)
        return len(gone)

    def record_batch(
        self,
        *,
        run_id: int | None,
        now: datetime,
        exported: Iterable[ExportedOrder],
        skipped: dict[str, str],
        resolved: Iterable[str],
        seen: dict[str, str] | None = None,
    ) -> None:
        """Record one batch's outcome in one transaction.

        `exported`: orders the destination confirmed; `skipped`: order id -> reason;
        `resolved`: orders that need no export (unchanged), whose old skip is void.
        `seen`: order id -> order date of unchanged orders as read, written where the state
        does not know the date yet (rows from before it kept them).
        Payment statuses held for exported orders are now applied: their events are done.
        """
        stamp = now.isoformat()
        exported_rows = [
            (
                e.order_id,
                e.content_hash,
                e.shipping_status,
                e.payment_status,
                stamp,
                run_id,
                e.document,
                order_date_key(e.order_date),
            )
            for e in exported
        ]
        cleared = [(order_id,) for order_id in resolved]
        cleared.extend((row[0],) for row in exported_rows)
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO exported_order (order_id, content_hash, shipping_status,"
                " payment_status, exported_at, run_id, document, order_date)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (order_id) DO UPDATE SET content_hash = excluded.content_hash,"
                " shipping_status = excluded.shipping_status,"
                " payment_status = excluded.payment_status,"
                " exported_at = excluded.exported_at,"
                " run_id = coalesce(excluded.run_id, exported_order.run_id),"
                " document = excluded.document,"
                " order_date = coalesce(excluded.order_date, exported_order.order_date)",
                exported_rows,
            )
            if seen and self._has_undated(db):
                db.executemany(
                    "UPDATE exported_order SET order_date = ?"
                    " WHERE order_id = ? AND order_date IS NULL",
                    [
                        (key, order_id)
                        for order_id, order_date in seen.items()
                        if (key := order_date_key(order_date)) is not None
                    ],
                )
            if exported_rows and self._has_held_events(db):
                db.executemany(
                    "UPDATE realtime_event SET status = ?, finished_at = ?"
                    " WHERE status = ? AND order_id = ?",
                    [(DELIVERED, stamp, HELD, row[0]) for row in exported_rows],
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

    @staticmethod
    def _has_undated(db: sqlite3.Connection) -> bool:
        """Whether any exported order lacks its date (from before the state kept dates); the
        date index answers at once, so a run's unchanged orders cost nothing once none do."""
        row = db.execute("SELECT 1 FROM exported_order WHERE order_date IS NULL LIMIT 1")
        return row.fetchone() is not None

    @staticmethod
    def _has_held_events(db: sqlite3.Connection) -> bool:
        return (
            db.execute("SELECT 1 FROM realtime_event WHERE status = ? LIMIT 1", (HELD,)).fetchone()
            is not None
        )

    # --- real-time events --------------------------------------------------------------

    def enqueue_event(
        self, *, kind: str, order_id: str, payload: bytes, dedupe_key: str, now: datetime
    ) -> tuple[int, bool]:
        """Commit an accepted event; (event_id, True) or, for an exact repeat, the first
        event's id and False."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO realtime_event (kind, order_id, payload, dedupe_key,"
                " received_at, status) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, order_id, payload, dedupe_key, now.isoformat(), QUEUED),
            )
            if cursor.rowcount == 1:
                return int(cursor.lastrowid or 0), True
            row = db.execute(
                "SELECT event_id FROM realtime_event WHERE dedupe_key = ?", (dedupe_key,)
            ).fetchone()
            return int(row[0]), False

    def queued_events(self, limit: int) -> list[RealtimeEvent]:
        """The oldest events waiting for delivery, in the order they were accepted."""
        rows = self._db.execute(
            "SELECT event_id, kind, order_id, payload, received_at, attempts FROM realtime_event"
            " WHERE status = ? ORDER BY event_id LIMIT ?",
            (QUEUED, limit),
        )
        return [RealtimeEvent(*row) for row in rows]

    def finish_event(
        self, event_id: int, *, status: str, now: datetime, error: str | None = None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE realtime_event SET status = ?, finished_at = ?, last_error = ?,"
                " attempts = attempts + 1 WHERE event_id = ?",
                (status, now.isoformat(), error, event_id),
            )

    def note_event_attempt(self, event_id: int, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE realtime_event SET attempts = attempts + 1, last_error = ?"
                " WHERE event_id = ?",
                (error, event_id),
            )

    def oldest_queued_event_at(self) -> str | None:
        """When the oldest event still waiting for delivery was accepted (ISO 8601)."""
        row = self._db.execute(
            "SELECT received_at FROM realtime_event WHERE status = ? ORDER BY event_id LIMIT 1",
            (QUEUED,),
        ).fetchone()
        return None if row is None else str(row[0])

    def recent_events(self, limit: int = 200) -> list[RealtimeEventRecord]:
        """The newest accepted events first, whatever became of them."""
        rows = self._db.execute(
            "SELECT event_id, kind, order_id, received_at, status, attempts, last_error,"
            " finished_at FROM realtime_event ORDER BY event_id DESC LIMIT ?",
            (limit,),
        )
        return [RealtimeEventRecord(*row) for row in rows]

    def event_counts(self) -> dict[str, int]:
        """How many real-time events are in each state (kept by triggers: no count here)."""
        rows = self._db.execute("SELECT status, events FROM realtime_tally WHERE events > 0")
        return {status: count for status, count in rows}

    def set_payment_override(
        self, order_id: str, payment_status: str, *, occurred_at: str, now: datetime
    ) -> bool:
        """Remember a payment callback's status: it wins over the ERP's for this order.

        Callbacks can arrive out of order: one that happened before the status already held
        for the order changes nothing (False). Times are compared as instants, never as
        strings (10:00+00:00 is after 11:30+02:00)."""
        moment = datetime.fromisoformat(occurred_at)
        with self.transaction() as db:
            row = db.execute(
                "SELECT occurred_at FROM payment_override WHERE order_id = ?", (order_id,)
            ).fetchone()
            if row is not None and moment < datetime.fromisoformat(row[0]):
                return False
            db.execute(
                "INSERT INTO payment_override (order_id, payment_status, occurred_at,"
                " received_at) VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET"
                " payment_status = excluded.payment_status, occurred_at = excluded.occurred_at,"
                " received_at = excluded.received_at",
                (order_id, payment_status, occurred_at, now.isoformat()),
            )
        return True

    def payment_overrides(self, order_ids: Sequence[str]) -> dict[str, str]:
        """Payment statuses from callbacks for these orders (usually none)."""
        if (
            not order_ids
            or self._db.execute("SELECT 1 FROM payment_override LIMIT 1").fetchone() is None
        ):
            return {}
        rows = self._rows_for_ids(
            "SELECT order_id, payment_status FROM payment_override", order_ids
        )
        return {order_id: status for order_id, status in rows}

    def expire_held_events(self, *, older_than: datetime, now: datetime) -> int:
        """Give up on payment statuses held longer than the export window."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE realtime_event SET status = ?, finished_at = ?, last_error = ?"
                " WHERE status = ? AND received_at < ?",
                (EXPIRED, now.isoformat(), "the order never arrived", HELD, older_than.isoformat()),
            )
            db.execute(
                "DELETE FROM payment_override WHERE received_at < ?"
                " AND order_id NOT IN (SELECT order_id FROM exported_order)",
                (older_than.isoformat(),),
            )
        return cursor.rowcount

    def prune_event_payloads(self, *, older_than: datetime) -> int:
        """Blank the payloads of events that finished before `older_than` (they hold customer
        data and are needed no more); returns how many were blanked."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE realtime_event SET payload = X'' WHERE status IN (?, ?, ?)"
                " AND finished_at < ? AND length(payload) > 0",
                (DELIVERED, SKIPPED, EXPIRED, older_than.isoformat()),
            )
        return cursor.rowcount

    # --- skipped orders --------------------------------------------------------------

    def skipped_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM skipped_order").fetchone()[0])

    def skipped_orders(self, limit: int | None = None) -> list[SkippedOrder]:
        sql = (
            "SELECT order_id, reason, attempts, first_skipped_at, last_tried_at, run_id"
            " FROM skipped_order ORDER BY last_tried_at DESC, order_id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [SkippedOrder(*row) for row in self._db.execute(sql)]

    def skipped_order_ids(self, order_ids: Sequence[str] | None = None) -> list[str]:
        """The skipped orders' ids (in id order), all of them or those among `order_ids`."""
        if order_ids is None:
            rows = self._db.execute("SELECT order_id FROM skipped_order ORDER BY order_id")
            return [row[0] for row in rows]
        found = self._rows_for_ids("SELECT order_id FROM skipped_order", list(order_ids))
        return sorted(row[0] for row in found)

    def forget_skipped(self, order_ids: Iterable[str]) -> None:
        """Take orders off the skipped list (they no longer exist in the ERP)."""
        with self.transaction() as db:
            db.executemany(
                "DELETE FROM skipped_order WHERE order_id = ?", [(i,) for i in order_ids]
            )

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

    def last_finished_run(self) -> RunRecord | None:
        runs = self.recent_runs(1, finished=True)
        return runs[0] if runs else None

    def last_success_at(self) -> str | None:
        """When the newest successful run finished (ISO 8601), None before any."""
        row = self._db.execute(
            "SELECT finished_at FROM run WHERE outcome = 'succeeded' ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    def recent_runs(self, limit: int = 50, *, finished: bool = False) -> list[RunRecord]:
        """The newest runs first; `finished`: leave out a run still in progress."""
        where = f" WHERE outcome != '{RUNNING}'" if finished else ""
        rows = self._db.execute(
            "SELECT run_id, trigger, started_at, finished_at, outcome, read, new, updated,"
            f" unchanged, retried, skipped, error, log_file FROM run{where}"
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


class ProductMemory:
    """What a destination last sent of each product (`scope`: the destination and store), so
    a product is created or updated only when it is new or changed. Its own connection to the
    state database; use it from one thread."""

    def __init__(self, path: Path, scope: str) -> None:
        self.scope = scope
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sent_product (scope TEXT NOT NULL, sku TEXT NOT NULL,"
            " content_hash TEXT NOT NULL, PRIMARY KEY (scope, sku)) WITHOUT ROWID"
        )

    def load(self) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT sku, content_hash FROM sent_product WHERE scope = ?", (self.scope,)
        )
        return dict(rows.fetchall())

    def save(self, sent: dict[str, str], forgotten: Iterable[str] = ()) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "DELETE FROM sent_product WHERE scope = ? AND sku = ?",
                [(self.scope, sku) for sku in forgotten],
            )
            self._db.executemany(
                "INSERT INTO sent_product (scope, sku, content_hash) VALUES (?, ?, ?)"
                " ON CONFLICT (scope, sku) DO UPDATE SET content_hash = excluded.content_hash",
                [(self.scope, sku, digest) for sku, digest in sent.items()],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


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
        self.since = ""
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            make_private_dirs(self.path.parent)
        except OSError as error:
            raise _path_problem(self.path, "lock file", error) from None
        try:
            fd = open_private(self.path, os.O_RDWR)
        except OSError as error:
            raise _path_problem(self.path, "lock file", error) from None
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
        self.since = info["since"]
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
