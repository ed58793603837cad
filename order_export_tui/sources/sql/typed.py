"""The window's read on PostgreSQL through psycopg, where every column's type is known before
the first row: each column's reading is settled once per run instead of once per value.

- The query does §9's NULL rules for the columns whose type allows it: text columns come as
  `coalesce(c, '')`, numeric and float amounts as `coalesce(c, 0)`; a `timestamptz` order date
  comes as the very ISO 8601 text `values.moment` would write.
- The rows are psycopg's own tuples (a `DECLARE`d cursor fetched a chunk at a time, through
  SQLAlchemy's connection so that its events and error handling still apply), never
  SQLAlchemy `Row` objects; they are unpacked at fixed positions. Only the columns whose type
  is not the expected one (an integer order id, a text amount) are read, each by the one
  function of `values` for its meaning, chosen once from the column's type.
- A row this cannot take as it is (a NULL line number, an amount that is not finite, a value
  its column's function refuses) is built by `DocumentMaker.document`, the careful path, which
  gives the same document, or the same reason, as for any other row.
- Each fetched chunk's documents are built and handed over `PART_SIZE` at a time (its lines
  read once for the whole chunk): a smaller set of live documents stays in the processor's
  cache (see `PART_SIZE`). The next chunk is fetched in a thread of its own meanwhile, so the
  database prepares its rows while this side builds documents, where the two took turns.

Amounts as floats: a document's amounts are JSON numbers (§3), so every path turns a numeric
into a float; for this read psycopg's C loader does it, no `Decimal` in between. float(text)
and float(Decimal(text)) are the same correctly rounded double, so the amounts are exactly the
careful path's; and any amount of up to 15 significant digits (below 10**13 with cents) comes
back from that double as the very decimal the ERP holds. That loader refuses a numeric beyond
a float's range with an exception that would end the whole read, so the query reads a numeric
of 1e300 or more (never a real amount) as NaN, refused by name like any amount that is not
finite. Every other read on a psycopg connection loads numeric with `SafeFloatLoader` (the
same floats, infinity beyond the range).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from sqlalchemy.engine import Connection, CursorResult

from order_export_tui.orders import OrderDocument
from order_export_tui.sources.sql.columns import LINE_COLUMNS, MONEY_COLUMNS, OPTIONAL_LINE_COLUMNS
from order_export_tui.sources.sql.layout import Layout, Relation
from order_export_tui.sources.sql.mapping import (
    DocumentMaker,
    Row,
    categories_cache,
    categories_of,
    order_key,
)
from order_export_tui.sources.sql.values import (
    UnreadableError,
    amount,
    line_number,
    moment,
    text,
)

# PostgreSQL type OIDs (pg_type.oid; fixed for the built-in types).
_TEXT_OIDS = frozenset((25, 1043, 1042, 19))  # text, varchar, char(n), name
_NUMERIC_OID = 1700
_FLOAT_OIDS = frozenset((700, 701))  # real, double precision
_SMALL_INT_OIDS = frozenset((21, 23))  # smallint, integer: always below 2**53
_TIMESTAMPTZ_OID = 1184

_LINE_AMOUNTS = ("quantity", "unit_price", "unit_price_incl_tax")
_GUARD = "1e300"  # a numeric at least this large reads as NaN (see above)
_SAFE = 2**53
_CURSOR = "order_export_window"
_ALL_LINE_COLUMNS = (*LINE_COLUMNS, *OPTIONAL_LINE_COLUMNS)
# Documents handed over at a time, out of each fetched chunk. The consumer holds the last part
# while the next is built: a 1,000-order part (some 6 MB of dicts and lists) with the one
# before it outgrew the processor's cache, and the same documents cost about a third more
# client CPU than built and handed over 250 at a time (docs/source-sql.md).
PART_SIZE = 250

Reader = Callable[[Any, str], Any]
Fixup = tuple[int, Reader, str]


def _order_key(value: Any, _: str) -> str:
    return order_key(value)


def _expression(relation: Relation, name: str) -> sa.ColumnElement[Any]:
    """How the query reads column `name`: with its NULL rule where the type allows."""
    column = relation.column(name)
    oid = relation.type_oids[name]
    if name == "order_date" and oid == _TIMESTAMPTZ_OID:
        return _iso_utc(column)
    if name in ("order_id", "order_date", "line_no"):
        return column
    if name in MONEY_COLUMNS or name in _LINE_AMOUNTS:
        if oid == _NUMERIC_OID:
            return sa.case(
                (column.is_(None), sa.literal_column("0")),
                (sa.func.abs(column) < sa.literal_column(_GUARD), column),
                else_=sa.literal_column("'NaN'::numeric"),
            )
        if oid in _FLOAT_OIDS:
            return sa.func.coalesce(column, sa.literal_column("0"))
        return column
    if oid in _TEXT_OIDS:
        return sa.func.coalesce(column, _EMPTY)
    return column


def _iso_utc(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A timestamp with time zone as `values.moment` writes it, by the database: ISO 8601 in
    UTC, microseconds only when it has them (as datetime.isoformat). A moment Python cannot
    hold (year 10000 or later, infinity) reads as "" (no order date: skipped with that reason)
    where psycopg would have refused the whole read; a window never holds one before year 1."""
    utc = column.op("AT TIME ZONE")(sa.literal_column("'UTC'"))
    return sa.case(
        (
            sa.or_(column.is_(None), column >= sa.literal_column("'10000-01-01 00:00:00+00'")),
            _EMPTY,
        ),
        (
            sa.func.date_trunc(sa.literal_column("'second'"), column) == column,
            sa.func.to_char(utc, _SECONDS),
        ),
        else_=sa.func.to_char(utc, _MICROSECONDS),
    )


_EMPTY = sa.literal_column("''")
_SECONDS = sa.literal_column("""'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'""")
_MICROSECONDS = sa.literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'""")


def _reader(name: str, oid: int) -> Reader | None:
    """The function reading column `name` of type `oid`; None when the query already gives
    what the document holds."""
    if name == "order_id":
        return None if oid in _TEXT_OIDS else _order_key
    if name == "order_date":
        return None if oid == _TIMESTAMPTZ_OID else moment
    if name == "line_no":
        return None if oid in _SMALL_INT_OIDS else line_number
    if name in MONEY_COLUMNS or name in _LINE_AMOUNTS:
        return None if oid == _NUMERIC_OID or oid in _FLOAT_OIDS else amount
    return None if oid in _TEXT_OIDS else text


def _fixups(relation: Relation, columns: Sequence[str]) -> tuple[Fixup, ...]:
    found = []
    for index, name in enumerate(columns):
        read = _reader(name, relation.type_oids[name])
        if read is not None:
            found.append((index, read, name))
    return tuple(found)


def _array_literal(keys: list[str]) -> str:
    """The ids as one array literal, which the server reads as an array of the column's own
    type, as it reads a list: the driver dumps a list with a regex search per element, about
    1 ms per 1,000 ids (some 7% of the read's client CPU), this in a quarter of that."""
    return "{" + ",".join(['"' + _quoted(key) + '"' for key in keys]) + "}"


def _quoted(key: str) -> str:
    if "\\" in key or '"' in key:
        return key.replace("\\", "\\\\").replace('"', '\\"')
    return key


def _apply(row: Row, fixups: tuple[Fixup, ...]) -> Row | None:
    """`row` with its odd columns read; None when one of them cannot be."""
    if not fixups:
        return row
    values = list(row)
    try:
        for index, read, column in fixups:
            values[index] = read(values[index], column)
    except UnreadableError:
        return None
    return values


@dataclass
class _Fetched:
    """One fetched chunk: its rows, its line rows read into lines by order id (`lines_of`,
    and the ids only the careful path can build), and how far its documents were built."""

    rows: Sequence[Row]
    line_rows: Sequence[Row]
    lines_of: dict[str, list[dict[str, Any]]]
    careful: set[str]
    taken: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    next: int = 0


class TypedStream:
    """One run's read of the window on PostgreSQL (see the module's docstring): a cursor over
    the orders view, fetched a chunk at a time; each chunk's lines in one query; its documents
    handed over `part_size` at a time."""

    def __init__(
        self,
        conn: Connection,
        layout: Layout,
        maker: DocumentMaker,
        window_start: datetime,
        chunk_size: int,
        part_size: int = PART_SIZE,
    ) -> None:
        self.conn = conn
        self.layout = layout
        self.maker = maker
        self.chunk_size = chunk_size
        self.part_size = part_size
        self._fetched: _Fetched | None = None
        self._ahead: Future[tuple[list[Any], list[Any]]] | None = None
        self._fetcher = ThreadPoolExecutor(1, thread_name_prefix="order-export-sql-fetch")
        orders, lines = layout.orders, layout.lines
        self.order_fixups = _fixups(orders, maker.order_columns)
        self.line_fixups = _fixups(lines, maker.line_columns)
        self.text_ids = _reader("order_id", lines.type_oids["order_id"]) is None
        self.keys_as_text = orders.type_oids["order_id"] in _TEXT_OIDS
        self.order_optionals = maker.order_optionals
        self.line_optional_positions = tuple(
            maker.line_columns.index(name) if name in maker.line_columns else 0
            for name in ("product_url", "image_url", "categories")
        )
        self._driver = conn.connection.driver_connection
        order_date = orders.column("order_date")
        query = (
            sa.select(*(_expression(orders, name) for name in maker.order_columns))
            .where(order_date >= layout.window_parameter(window_start))
            .order_by(order_date, orders.column("order_id"))
        )
        compiled = query.compile(dialect=conn.dialect)
        conn.exec_driver_sql(
            f"DECLARE {_CURSOR} NO SCROLL CURSOR FOR {compiled}", compiled.params
        ).close()
        self._float_amounts()  # for this read's rows only: close() restores SafeFloatLoader
        line_id = lines.column("order_id")
        self.lines_query = (
            sa.select(*(_expression(lines, name) for name in maker.line_columns))
            .where(line_id == sa.func.any(sa.bindparam("ids")))
            .order_by(line_id, lines.column("line_no"))
        )
        # The fast loop of `lines` takes rows of exactly these columns.
        self.all_line_columns = (
            not self.line_fixups and self.text_ids and maker.line_columns == _ALL_LINE_COLUMNS
        )

    def _float_amounts(self) -> None:
        from psycopg.types.numeric import FloatLoader

        self._driver.adapters.register_loader("numeric", FloatLoader)

    def close(self) -> None:
        """Gives the connection back as it was lent (numeric read by `SafeFloatLoader` again),
        once a fetch still under way has ended."""
        try:
            ahead, self._ahead = self._ahead, None
            if ahead is not None and not ahead.cancel():
                wait([ahead])  # its failure, if any, is nobody's now
            self._fetcher.shutdown()
            if not self._driver.closed:
                self._driver.adapters.register_loader("numeric", SafeFloatLoader)
        finally:
            self.conn.close()

    def next_chunk(self) -> list[OrderDocument] | None:
        """The next documents, at most `part_size` of them; None once the window is read.
        The next chunk is fetched in a thread of its own while this one's documents are built:
        the database prepares its rows meanwhile (while it waits for them, the thread holds
        no lock of Python's), instead of the two taking turns."""
        fetched = self._fetched
        if fetched is None:
            ahead, self._ahead = self._ahead, None
            rows, line_rows = self._fetch() if ahead is None else ahead.result()
            if not rows:
                return None
            self._ahead = self._fetcher.submit(self._fetch)
            fetched = self._fetched = self._sorted_lines(rows, line_rows)
        docs = self._build(fetched, self.part_size)
        if fetched.next >= len(fetched.rows):
            self._fetched = None  # its rows go before the next fetch
        return docs

    def _fetch(self) -> tuple[list[Any], list[Any]]:
        """The next chunk's order rows and all their line rows (one query each)."""
        rows = self._rows(self.conn.exec_driver_sql(f"FETCH {self.chunk_size} FROM {_CURSOR}"))
        keys = [row[0] for row in rows if row[0] is not None]
        if not keys:
            return rows, []
        ids = _array_literal(keys) if self.keys_as_text else keys
        return rows, self._rows(self.conn.execute(self.lines_query, {"ids": ids}))

    def _rows(self, result: CursorResult[Any]) -> list[Any]:
        """The driver's tuples (a value the driver cannot load is a database error)."""
        dbapi_error = self.conn.dialect.loaded_dbapi.Error
        try:
            return result.cursor.fetchall()  # type: ignore[no-any-return]
        except dbapi_error as error:
            raise sa.exc.DBAPIError.instance(None, None, error, dbapi_error) from None
        finally:
            result.close()

    # ---- documents ----

    def documents(self, rows: Sequence[Row], line_rows: Sequence[Row]) -> list[OrderDocument]:
        """The chunk's documents, given all its line rows (ordered by order and line)."""
        return self._build(self._sorted_lines(rows, line_rows), len(rows))

    def _sorted_lines(self, rows: Sequence[Row], line_rows: Sequence[Row]) -> _Fetched:
        lines_of, careful = self.lines(line_rows)
        return _Fetched(rows, line_rows, lines_of, careful)

    def _build(self, fetched: _Fetched, count: int) -> list[OrderDocument]:
        """The documents of the next `count` rows of `fetched`."""
        lines_of, careful, taken = fetched.lines_of, fetched.careful, fetched.taken
        start = fetched.next
        fetched.next = start + count
        result = []
        for row in fetched.rows[start : start + count]:
            doc = self.order(row)
            if doc is None or doc["order_id"] in careful:
                key = row[0] if type(row[0]) is str else order_key(row[0])
                result.append(self.maker.document(row, self._raw_lines(fetched.line_rows, key)))
                continue
            key = doc["order_id"]
            lines = lines_of.pop(key, None)
            if lines is None:  # a second order with the same id: its own copy of the lines
                lines = copy.deepcopy(taken.get(key, []))
            else:
                taken[key] = lines
            doc["lines"] = lines
            result.append(doc)
        return result

    def lines(self, line_rows: Sequence[Row]) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
        """Each order's lines by order id, and the orders with a line only the careful path
        can build (this is most of the read's own work). Rows of every line column, text ids
        and no column read value by value go to `_lines_of` as they are; others are first
        given that shape (`_full_line_rows`)."""
        rows = line_rows if self.all_line_columns else self._full_line_rows(line_rows)
        return _lines_of(rows, categories_cache.get)

    def _full_line_rows(self, line_rows: Sequence[Row]) -> Iterator[Row]:
        """Each line row with its odd columns read, its id as the order's key and every
        optional column in place (None where the view has none); a row that cannot be read
        comes with no line number, which sends its order the careful way."""
        fixups, text_ids = self.line_fixups, self.text_ids
        product_at, image_at, categories_at = self.line_optional_positions
        for row in line_rows:
            values = _apply(row, fixups) if fixups else row
            key = row[0] if text_ids else order_key(row[0])
            if values is None:
                yield (key, None, None, None, 0.0, 0.0, 0.0, None, None, None)
                continue
            yield (
                key,
                *values[1:7],
                values[product_at] if product_at else None,
                values[image_at] if image_at else None,
                values[categories_at] if categories_at else None,
            )

    def _raw_lines(self, line_rows: Sequence[Row], key: str) -> list[Row]:
        if self.text_ids:
            return [row for row in line_rows if row[0] == key]
        return [row for row in line_rows if order_key(row[0]) == key]

    def order(self, row: Row) -> OrderDocument | None:
        """The order's document without its lines; None when the careful path must build it."""
        values = _apply(row, self.order_fixups) if self.order_fixups else row
        if values is None:
            return None
        (
            order_id, order_date, customer_id, email, first_name, last_name, currency,
            subtotal, discount, shipping_cost, tax, total, shipping_method, payment_method,
            b_line1, b_line2, b_city, b_region, b_postcode, b_country,
            s_line1, s_line2, s_city, s_region, s_postcode, s_country,
            shipping_status, payment_status, tracking_number, tracking_url,
        ) = values[:30]  # fmt: skip
        # as for a line's amounts (a sum too large for a float goes the careful way: it builds
        # the same document)
        if order_id is None or (subtotal + discount + shipping_cost + tax + total) * 0 != 0:
            return None
        doc: OrderDocument = {
            "order_id": order_id,
            "order_date": order_date,
            "customer": {
                "id": customer_id,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
            },
            "currency": currency,
            "lines": [],
            "subtotal": subtotal,
            "discount": discount,
            "shipping_cost": shipping_cost,
            "tax": tax,
            "total": total,
            "shipping_method": shipping_method,
            "payment_method": payment_method,
            "billing_address": {
                "line1": b_line1,
                "line2": b_line2,
                "city": b_city,
                "region": b_region,
                "postcode": b_postcode,
                "country": b_country,
            },
            "shipping_address": {
                "line1": s_line1,
                "line2": s_line2,
                "city": s_city,
                "region": s_region,
                "postcode": s_postcode,
                "country": s_country,
            },
            "shipping_status": shipping_status,
            "payment_status": payment_status,
            "tracking_number": tracking_number,
            "tracking_url": tracking_url,
        }
        if self.order_optionals:
            for column, value in zip(self.order_optionals, values[30:], strict=True):
                if value:
                    doc[column] = value
        return doc


def _lines_of(
    line_rows: Iterable[Row], known_categories: Callable[[str], tuple[str, ...] | None]
) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    """`TypedStream.lines` of rows of every line column, in their order, with the order's key
    first: one loop, no call per line, each row unpacked whole (a slice and its unpacking
    cost a tenth of the lines' time)."""
    lines_of: dict[str, list[dict[str, Any]]] = {}
    careful: set[str] = set()
    current: list[dict[str, Any]] = []
    previous: object = _NOTHING
    for row in line_rows:
        key, line_no, sku, name, count, unit_price, incl_tax, product_url, image_url, names = row
        if key != previous:
            previous = key
            current = lines_of.setdefault(key, [])
        # x * 0 is 0 for a finite float, NaN for NaN or infinity (the query keeps numerics
        # below 1e300: their sum is finite)
        if line_no is None or (count + unit_price + incl_tax) * 0 != 0:
            careful.add(key)
            continue
        if count.is_integer() and -_SAFE < count < _SAFE:
            count = int(count)
        line: dict[str, Any] = {
            "line_no": line_no,
            "sku": sku,
            "name": name,
            "quantity": count,
            "unit_price": unit_price,
            "unit_price_incl_tax": incl_tax,
        }
        if product_url:
            line["product_url"] = product_url
        if image_url:
            line["image_url"] = image_url
        if names:
            split = known_categories(names) or categories_of(names)
            if split:
                line["categories"] = list(split)
        current.append(line)
    return lines_of, careful


_NOTHING = object()


class SafeFloatLoader(Loader):
    """`numeric` as a float on every other read of a psycopg connection (`numeric_as_float`):
    the same float as the careful path makes of a Decimal, and the same in a reason; beyond a
    float's range it is infinity (refused by name), where psycopg's C loader would raise."""

    def load(self, data: Buffer) -> float:
        return float(bytes(data))


def numeric_as_float(dbapi_connection: Any, _: Any) -> None:
    """A psycopg connection's numerics read by `SafeFloatLoader` (an engine's connect event)."""
    connection = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    connection.adapters.register_loader("numeric", SafeFloatLoader)
