"""The state database on a PostgreSQL server: the one module (with `pg_schema`) that knows
psycopg. Several daemons share it (interfaces.md §10).

The same interface as SQLite's `connection.Database` (`backend.StateConnection`): statements
written with `?` are sent with `%s`, `rows_for_ids` is one `= ANY(...)`, and `transaction` is
an explicit `BEGIN` ... `COMMIT` that joins an enclosing one. PostgreSQL commits are durable
by themselves (`synchronous_commit`), so `durable` asks nothing more.

A connection that the server dropped (a restart, a network failure) is opened again at the
next statement outside a transaction; inside one, the transaction fails as a
`StateWriteError` and records nothing. psycopg's errors never leave this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg

from order_export_tui.state.errors import StateUnusableError, StateWriteError
from order_export_tui.state.location import PostgresLocation
from order_export_tui.state.pg_schema import migrate

CONNECT_TIMEOUT_SECONDS = 10


class PostgresDatabase:
    """One connection to a PostgreSQL state database, its tables made and migrated. Not
    thread-safe: use it from one thread at a time."""

    def __init__(self, location: PostgresLocation, *, durable: bool = False) -> None:
        del durable  # every PostgreSQL commit is durable
        self.location = location
        self._depth = 0
        self._transaction = PostgresTransaction(self)
        self._statements: dict[str, str] = {}
        self._connection = self._connect()
        try:
            with self.transaction():
                migrate(self._connection)
        except StateWriteError as error:
            self._connection.close()
            raise StateUnusableError(self.where, f"{self.where}: {error}") from None

    @property
    def where(self) -> str:
        return self.location.shown

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The live connection (opened again if the server dropped it)."""
        return self._live()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self.location.url,
                password=self.location.password,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="order-export",
            )
        except psycopg.Error as error:
            raise StateUnusableError(
                self.where, f"{self.where}: cannot reach the state database: {self._say(error)}"
            ) from None

    def _live(self) -> psycopg.Connection[Any]:
        connection = self._connection
        if (connection.closed or connection.broken) and not self._depth:
            with contextlib.suppress(psycopg.Error):
                connection.close()
            try:
                self._connection = connection = self._connect()
            except StateUnusableError as error:
                raise StateWriteError(self.where, error) from None
        return connection

    def _say(self, error: BaseException) -> str:
        text = str(error).strip() or type(error).__name__
        password = self.location.password
        return text.replace(password, "***") if password else text

    def _sql(self, sql: str) -> str:
        translated = self._statements.get(sql)
        if translated is None:
            translated = sql.replace("%", "%%").replace("?", "%s")
            self._statements[sql] = translated
        return translated

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._connection.close()

    def transaction(self) -> PostgresTransaction:
        """One write transaction (`with db.transaction() as db:`), as SQLite's: inside another
        one it joins it; a failure is a `StateWriteError` and records nothing."""
        return self._transaction

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self._live().execute(self._sql(sql), parameters)
        except psycopg.Error as error:
            if self._depth:
                raise  # the transaction's block turns it into a StateWriteError
            raise StateWriteError(self.where, _Reason(self._say(error))) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self._live().cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)
        except psycopg.Error as error:
            if self._depth:
                raise
            raise StateWriteError(self.where, _Reason(self._say(error))) from None

    def rows_for_ids(
        self, select: str, ids: Sequence[str], leading: Sequence[Any] = ()
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of `select ... WHERE order_id = ANY(<ids>)` (a `select` that ends in
        `WHERE ... AND` gets its own conditions first, their parameters in `leading`),
        planned for these ids each time: a prepared plan made while the table was small
        would scan it whole for every batch."""
        if not ids:
            return iter(())
        joiner = " " if select.endswith(" AND") else " WHERE "
        sql = self._sql(f"{select}{joiner}order_id = ANY(?)")
        try:
            rows = self._live().execute(sql, (*leading, list(ids)), prepare=False).fetchall()
        except psycopg.Error as error:
            if self._depth:
                raise
            raise StateWriteError(self.where, _Reason(self._say(error))) from None
        return iter(rows)


class PostgresTransaction:
    """`PostgresDatabase.transaction`'s block."""

    __slots__ = ("_db",)

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    def __enter__(self) -> PostgresDatabase:
        db = self._db
        if db._depth:
            db._depth += 1
            return db
        try:
            db._live().execute("BEGIN")
        except psycopg.Error as error:
            raise StateWriteError(db.where, _Reason(db._say(error))) from None
        db._depth = 1
        return db

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        db = self._db
        db._depth -= 1
        if db._depth:
            return
        connection = db._connection
        if error is None:
            try:
                connection.execute("COMMIT")
                return
            except psycopg.Error as failure:
                error = failure
        if not (connection.closed or connection.broken):
            with contextlib.suppress(psycopg.Error):
                connection.execute("ROLLBACK")
        if isinstance(error, psycopg.Error):
            raise StateWriteError(db.where, _Reason(db._say(error))) from None


class _Reason(Exception):
    """A driver's error as text only (no driver object leaves this module)."""
