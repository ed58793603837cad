"""`SqlSource`: an ERP's orders read from two SQL views (interfaces.md §9) as order documents.

A run reads the window's orders from the orders view through a server-side cursor (PostgreSQL:
a named cursor; memory holds one chunk whatever the window's size), ordered by
(order_date, order_id); each chunk's lines come from one query on the lines view
(`order_id = ANY(...)` on PostgreSQL, `IN (...)` elsewhere), never one query per order.
SQLAlchemy is synchronous: every database call runs in a worker thread, one chunk per call (the
engine reads the next chunk while it sends one), and the connect and statement timeouts keep
any of them from waiting forever. On PostgreSQL through psycopg the window's read is
`typed.TypedStream` (column types known up front, the driver's tuples, each chunk's documents
handed over a part at a time); elsewhere, and for lookups by id, SQLAlchemy rows and
`mapping`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, Result

from order_export_tui.orders import OrderDocument
from order_export_tui.sources.base import SourceError
from order_export_tui.sources.sql.errors import (
    connection_problem,
    detail,
    display_url,
    driver_missing,
    is_database_error,
    timed_out,
)
from order_export_tui.sources.sql.layout import Layout, probe
from order_export_tui.sources.sql.mapping import DocumentMaker, Row, order_key
from order_export_tui.sources.sql.settings import SqlSettings, engine_url
from order_export_tui.sources.sql.typed import PART_SIZE, TypedStream, numeric_as_float
from order_export_tui.transport.redaction import redact

_T = TypeVar("_T")

CHUNK_SIZE = 1000  # orders per chunk: one lines query each
LOOKUP_CHUNK = 500  # ids per get_orders query
CONNECT_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_SECONDS = 300  # sorting a large window's view may take a while; not forever


class SqlSource:
    """Reads orders from the `orders` and `order_lines` views (an `OrderSource`)."""

    name = "sql"

    def __init__(
        self,
        url: URL,
        *,
        orders: str,
        order_lines: str,
        password_env: str = "",
        chunk_size: int = CHUNK_SIZE,
        part_size: int = PART_SIZE,
        connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
        statement_timeout: int = STATEMENT_TIMEOUT_SECONDS,
    ) -> None:
        if chunk_size < 1 or part_size < 1:
            raise ValueError(
                f"chunk_size and part_size must be 1 or more ({chunk_size}, {part_size})"
            )
        self.url = url
        self.orders = orders
        self.order_lines = order_lines
        self.password_env = password_env
        self.chunk_size = chunk_size
        self.part_size = part_size  # PostgreSQL's read: documents handed over at a time
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self.where = display_url(url)
        self._engine: Engine | None = None
        self._layout: Layout | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_section(
        cls,
        section: SqlSettings,
        settings_path: Path,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> SqlSource:
        """From `[erp.sql]` of the settings file at `settings_path` (relative SQLite paths
        resolve against its folder)."""
        url = engine_url(section, Path(settings_path).parent, environ)
        return cls(
            url,
            orders=section.orders,
            order_lines=section.order_lines,
            password_env=section.password_env,
            **options,
        )

    # ---- OrderSource ----

    async def count_orders(self, window_start: datetime) -> int:
        def count(conn: Connection) -> int:
            layout = self._probe(conn)
            orders = layout.orders
            query = (
                sa.select(sa.func.count())
                .select_from(orders.table)
                .where(layout.in_window(orders.column("order_date"), window_start))
            )
            return int(conn.execute(query).scalar_one())

        return await self._call(count)

    async def iter_orders(self, window_start: datetime) -> AsyncIterator[list[OrderDocument]]:
        stream = await self._call(lambda _: _Stream(self, window_start), connect=False)
        try:
            while True:
                docs = await self._call(stream.next_chunk, connect=False)
                if docs is None:
                    return
                if docs:
                    yield docs
        finally:
            await asyncio.to_thread(stream.close)

    async def get_orders(self, order_ids: Sequence[str]) -> dict[str, OrderDocument | None]:
        """These orders by id, whatever their date: primary-key reads, no window scan."""
        found: dict[str, OrderDocument | None] = dict.fromkeys(order_ids)
        unique = list(found)
        for start in range(0, len(unique), LOOKUP_CHUNK):
            chunk = unique[start : start + LOOKUP_CHUNK]
            docs = await self._call(lambda conn, ids=chunk: self._read_by_id(conn, ids))
            for doc in docs:
                if doc["order_id"] in found:
                    found[doc["order_id"]] = doc
        return found

    async def check_connection(self) -> str:
        def check(conn: Connection) -> str:
            layout = self._probe(conn)
            total = conn.execute(sa.select(sa.func.count()).select_from(layout.orders.table))
            orders = int(total.scalar_one())
            return (
                f"database {self.where}: {self.orders} ({orders:,} order"
                f"{'' if orders == 1 else 's'}) and {self.order_lines}"
            )

        return await self._call(check)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.dispose)

    # ---- internals ----

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._new_engine()
            return self._engine

    def _new_engine(self) -> Engine:
        engine = sa.create_engine(
            self.url,
            connect_args=self._connect_args(),
            pool_pre_ping=True,
            hide_parameters=True,
        )
        if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
            sa.event.listen(engine, "connect", numeric_as_float)
        return engine

    def _connect_args(self) -> dict[str, Any]:
        backend = self.url.get_backend_name()
        if backend == "postgresql" and self.url.get_driver_name() == "psycopg":
            return {
                "connect_timeout": self.connect_timeout,
                "application_name": "order-export",
                "options": (
                    f"-c statement_timeout={self.statement_timeout * 1000}"
                    " -c default_transaction_read_only=on"
                ),
                # A server that vanishes mid-read is noticed instead of waited for.
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            }
        if backend == "sqlite":
            return {"timeout": self.connect_timeout, "check_same_thread": False}
        if backend in ("mysql", "mariadb") and self.url.get_driver_name() == "pymysql":
            return {"connect_timeout": self.connect_timeout, "read_timeout": self.statement_timeout}
        return {}

    def _probe(self, conn: Connection) -> Layout:
        self._layout = probe(conn, self.orders, self.order_lines)
        return self._layout

    def maker(self, layout: Layout) -> DocumentMaker:
        return DocumentMaker(
            self.orders, self.order_lines, layout.order_optionals, layout.line_optionals
        )

    def lines_query(self, layout: Layout, keys: list[Any]) -> sa.Select[Any]:
        lines = layout.lines
        order_id = lines.column("order_id")
        if self.engine().dialect.name == "postgresql":
            match = order_id == sa.func.any(sa.bindparam("ids", keys))
        else:
            match = order_id.in_(sa.bindparam("ids", keys, expanding=True))
        return sa.select(*lines.columns).where(match).order_by(order_id, lines.column("line_no"))

    def _read_by_id(self, conn: Connection, order_ids: list[str]) -> list[OrderDocument]:
        layout = self._layout or self._probe(conn)
        keys: list[Any] = order_ids
        if layout.integer_ids:  # "0042" is not order 42's id as the view shows it
            keys = [int(i) for i in order_ids if i.isdigit() and str(int(i)) == i]
            if not keys:
                return []
        orders = layout.orders
        order_id = orders.column("order_id")
        query = sa.select(*orders.columns).where(
            order_id.in_(sa.bindparam("ids", keys, expanding=True))
        )
        rows = conn.execute(query).fetchall()
        return documents(self.maker(layout), rows, self._lines_of(conn, layout, rows))

    def _lines_of(self, conn: Connection, layout: Layout, rows: Sequence[Row]) -> list[Row]:
        if not rows:
            return []
        keys = list({row[0] for row in rows if row[0] is not None})
        if not keys:
            return []
        return list(conn.execute(self.lines_query(layout, keys)).fetchall())

    async def _call(self, work: Callable[[Connection], _T], *, connect: bool = True) -> _T:
        """`work` in a worker thread (with a connection when `connect`); database failures
        become `SourceError` messages an operator can act on."""
        try:
            if connect:
                return await asyncio.to_thread(self._connected, work)
            return await asyncio.to_thread(work, None)  # type: ignore[arg-type]
        except SourceError:
            raise
        except Exception as error:
            if not is_database_error(error):
                raise
            raise SourceError(self.problem(error)) from None

    def _connected(self, work: Callable[[Connection], _T]) -> _T:
        with self.engine().connect() as conn:
            return work(conn)

    def problem(self, error: BaseException) -> str:
        """The operator's message for `error`; the password masked, should a driver echo it."""
        return redact(self._problem(error), self.url.password)

    def _problem(self, error: BaseException) -> str:
        missing = driver_missing(error, self.url)
        if missing:
            return missing
        said = connection_problem(error, self.where, self.password_env)
        if said:
            return said
        if timed_out(error):
            seconds = self.statement_timeout
            return (
                f"the database at {self.where} did not answer within {seconds} second"
                f"{'' if seconds == 1 else 's'} ({detail(error)})"
            )
        return f"the database at {self.where} answered: {detail(error)}"


class _Stream:
    """One run's read of the window: a server-side cursor over the orders view, walked a
    chunk at a time from worker threads (never two at once: the iterator awaits each)."""

    def __init__(self, source: SqlSource, window_start: datetime) -> None:
        self.source = source
        self.window_start = window_start
        self.conn = source.engine().connect()
        self.typed: TypedStream | None = None
        self.result: Result[Any] | None = None
        try:
            self.layout = source._probe(self.conn)
            self.maker = source.maker(self.layout)
            if self.layout.typed:
                self.typed = TypedStream(
                    self.conn,
                    self.layout,
                    self.maker,
                    window_start,
                    source.chunk_size,
                    source.part_size,
                )
                return
            orders = self.layout.orders
            order_date = orders.column("order_date")
            query = (
                sa.select(*orders.columns)
                .where(order_date >= self.layout.window_parameter(window_start))
                .order_by(order_date, orders.column("order_id"))
                .execution_options(stream_results=True, yield_per=source.chunk_size)
            )
            self.result = self.conn.execute(query)
            self.partitions: Iterator[Sequence[Row]] = self.result.partitions(source.chunk_size)
        except BaseException:
            self.conn.close()
            raise

    def next_chunk(self, _: object = None) -> list[OrderDocument] | None:
        """The next chunk's documents, its lines read in one query; None once the window is
        read."""
        if self.typed is not None:
            docs = self.typed.next_chunk()
        else:
            rows = next(self.partitions, None)
            if rows is None:
                return None
            line_rows = self.source._lines_of(self.conn, self.layout, rows)
            docs = documents(self.maker, rows, line_rows)
        if docs and self.layout.date_kind == "text":  # the query only narrowed it to the day before
            docs = [doc for doc in docs if not _before(doc, self.window_start)]
        return docs

    def close(self) -> None:
        if self.typed is not None:
            self.typed.close()
            return
        try:
            if self.result is not None:
                self.result.close()
        finally:
            self.conn.close()


def documents(
    maker: DocumentMaker, rows: Sequence[Row], line_rows: list[Row]
) -> list[OrderDocument]:
    """Documents for order rows, given all their line rows (ordered by order and line)."""
    lines_of: dict[str, list[Row]] = {}
    for key, group in groupby(line_rows, _first):
        if type(key) is not str:
            key = order_key(key)
        found = lines_of.get(key)
        if found is None:
            lines_of[key] = list(group)
        else:
            found.extend(group)
    result = []
    for row in rows:
        key = row[0] if type(row[0]) is str else order_key(row[0])
        result.append(maker.document(row, lines_of.get(key, ())))
    return result


_first = itemgetter(0)


def _before(doc: OrderDocument, window_start: datetime) -> bool:
    try:
        return datetime.fromisoformat(doc["order_date"]) < window_start
    except (KeyError, TypeError, ValueError):
        return False  # unreadable: kept, so that it is skipped with its reason
