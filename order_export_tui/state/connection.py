"""The connection to the state database: the one module that opens it and writes through it.

One SQLite file in WAL mode is the single source of truth that a restarted process, the
daemon and an attached dashboard read. Writes use `BEGIN IMMEDIATE` so a writer never
deadlocks halfway through a transaction.

The file holds customer data: it is created 0600 (SQLite gives its -wal and -shm the same
mode) in folders created 0700. A file that is not a usable database is never written to:
opening it raises `StateDatabaseCorruptError`, which names the file and what to do. SQLite's
own errors never leave this module: opening fails with a `StateUnusableError`, a write with a
`StateWriteError`.

The aggregates (exported orders, runs, ...) see only `Database`: its `execute`,
`executemany`, `rows_for_ids` and `transaction`. Another backend is another class with them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from order_export_tui.private_files import create_private_file, make_private_dirs
from order_export_tui.state.errors import (
    StateDatabaseCorruptError,
    StateUnusableError,
    StateWriteError,
    StoragePathError,
    path_problem,
)
from order_export_tui.state.schema import migrate

_SQLITE_MAGIC = b"SQLite format 3\x00"
_IDS_PER_STATEMENT = 10000  # SQLite allows 32766 host parameters per statement


class Database:
    """One connection to the state database, its tables made and migrated. Not thread-safe:
    use it from one thread."""

    def __init__(self, path: Path, *, durable: bool = False) -> None:
        """`durable`: every commit reaches the disk before it returns (the webhook intake's
        connection: an event answered 202 must survive a power loss too). A durable
        connection may be handed to one worker thread (the intake commits there, so that
        the event loop does not wait for the disk); still only one thread at a time uses it."""
        self.path = path
        self._depth = 0  # how many `transaction` blocks are open (the outermost commits)
        self._transaction = Transaction(self)
        try:
            make_private_dirs(path.parent)
        except OSError as error:
            raise path_problem(path, "state database", error) from None
        _check_database_file(path)
        try:
            if not path.exists():
                create_private_file(path)  # SQLite gives -wal and -shm this file's mode
        except OSError as error:
            raise path_problem(path, "state database", error) from None
        try:
            self._connection = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=not durable
            )
        except sqlite3.Error as error:
            raise _open_problem(path, error) from None
        try:
            self._open(durable)
        except (sqlite3.Error, StateWriteError) as error:
            self._connection.close()
            cause = error.__cause__ if isinstance(error, StateWriteError) else error
            if isinstance(cause, sqlite3.Error):
                raise _open_problem(path, cause) from None
            raise

    def _open(self, durable: bool) -> None:
        self._connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode keeps every commit across a process crash; only a power loss can
        # roll back the last commits, which at worst causes a harmless repeat of an upsert.
        self._connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._connection.execute("PRAGMA foreign_keys=ON")
        with self.transaction():
            migrate(self._connection)

    @property
    def where(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._connection.close()

    def transaction(self) -> Transaction:
        """One write transaction (`with db.transaction() as db:`); an SQLite failure in it
        is a `StateWriteError` (the real reason, never one from the rollback that follows
        it). Inside another one it joins that one: the outermost block commits, or rolls back
        all of it."""
        return self._transaction

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._connection.execute(sql, parameters)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self._connection.executemany(sql, rows)

    def rows_for_ids(
        self, select: str, ids: Sequence[str], leading: Sequence[Any] = ()
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of `select ... WHERE order_id IN (<ids>)`, in chunks of what one statement
        may take. A `select` that ends in `WHERE ... AND` gets its own conditions first,
        with their parameters in `leading`."""
        joiner = " " if select.endswith(" AND") else " WHERE "
        for start in range(0, len(ids), _IDS_PER_STATEMENT):
            chunk = ids[start : start + _IDS_PER_STATEMENT]
            marks = ",".join("?" * len(chunk))
            yield from self._connection.execute(
                f"{select}{joiner}order_id IN ({marks})", [*leading, *chunk]
            )


class Transaction:
    """`Database.transaction`'s block: a class rather than a generator, because a run enters
    one per aggregate of every batch (a generator's context manager costs twice as much)."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> Database:
        db = self._db
        if db._depth:
            db._depth += 1
            return db
        try:
            db._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StateWriteError(db.path, error) from error
        db._depth = 1
        return db

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        db = self._db
        db._depth -= 1
        if db._depth:
            return  # the enclosing block commits or rolls back
        connection = db._connection
        if error is None:
            try:
                connection.execute("COMMIT")
                return
            except sqlite3.Error as failure:
                error = failure
        # SQLite may have rolled back already (SQLITE_FULL does): a second ROLLBACK would
        # fail and hide the error that matters.
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        if isinstance(error, sqlite3.Error):
            raise StateWriteError(db.path, error) from error


def _check_database_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that is not (or no longer) a whole database:
    not a regular file, a foreign or broken header, or shorter than its header says."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise path_problem(path, "state database", error) from None
    if path.is_dir():
        raise path_problem(path, "state database", IsADirectoryError())
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
        raise path_problem(path, "state database", error) from None
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
