"""`DemoErpSource`: streams the demo ERP as order documents (interfaces.md §3)."""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from order_export_tui.sources.base import OrderDocument, SourceError
from order_export_tui.sources.demo.helpers import _utc_text

_T = TypeVar("_T")

# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

_SHIPPED = "shipped"
_PARTIALLY_SHIPPED = "partially_shipped"
_NOT_SHIPPED = "not_shipped"

# The unary + keeps SQLite from using the order-date index here: walking the primary key in
# order_no order and filtering is what keyset paging needs (no sort of the whole window).
# The customer comes from the header's sell-to snapshot (as in Business Central), not from a
# join with `customer`: the join alone would cost about a fifth of the read time.
_HEADER_COLUMNS = """
SELECT order_no, order_date_utc, customer_no, sell_to_email, sell_to_first_name,
       sell_to_last_name, currency, subtotal, discount, shipping_cost, tax, total,
       shipping_method, payment_method,
       bill_to_line1, bill_to_line2, bill_to_city, bill_to_region, bill_to_postcode,
       bill_to_country,
       ship_to_line1, ship_to_line2, ship_to_city, ship_to_region, ship_to_postcode,
       ship_to_country,
       payment_status, {marketing}
FROM sales_header
"""
_HEADER_SQL = (
    _HEADER_COLUMNS
    + """WHERE order_no {op} ? AND +order_date_utc >= ?
ORDER BY order_no
LIMIT ?
"""
)
# A database from before the optional fields has none of them: they read as "".
_MARKETING_COLUMNS = "coupon_code, campaign_id, landing_site"
_NO_MARKETING_COLUMNS = "'', '', ''"
_ITEMS_SQL = "SELECT item_no, product_url, image_url, categories FROM item"
_FIRST_ORDER_SQL = "SELECT min(order_no) FROM sales_header WHERE order_date_utc >= ?"
_COUNT_SQL = "SELECT count(*) FROM sales_header WHERE order_date_utc >= ?"
_COUNT_ALL_SQL = "SELECT count(*) FROM sales_header"
_LINES_SQL = """
SELECT order_no, line_no, item_no, description, quantity, unit_price, unit_price_incl_tax,
       quantity_shipped
FROM sales_line
WHERE order_no BETWEEN ? AND ?
ORDER BY order_no, line_no
"""
# Ordered so that each order's latest shipment comes last and wins.
_SHIPMENTS_SQL = """
SELECT order_no, tracking_number, tracking_url
FROM shipment
WHERE order_no BETWEEN ? AND ?
ORDER BY order_no, shipped_at, shipment_no
"""


# Lookups by id go through the primary keys (sales_header, sales_line) and the shipment index.
_HEADERS_BY_ID_SQL = _HEADER_COLUMNS + "WHERE order_no IN ({marks})"
_LINES_BY_ID_SQL = """
SELECT order_no, line_no, item_no, description, quantity, unit_price, unit_price_incl_tax,
       quantity_shipped
FROM sales_line
WHERE order_no IN ({marks})
ORDER BY order_no, line_no
"""
_SHIPMENTS_BY_ID_SQL = """
SELECT order_no, tracking_number, tracking_url
FROM shipment
WHERE order_no IN ({marks})
ORDER BY order_no, shipped_at, shipment_no
"""
LOOKUP_CHUNK = 900  # ids per query: well under SQLite's host-parameter limit


def _marketing_columns(marketing: bool) -> str:
    return _MARKETING_COLUMNS if marketing else _NO_MARKETING_COLUMNS


def _header_sql(op: str, *, marketing: bool) -> str:
    return _HEADER_SQL.replace("{op}", op).replace("{marketing}", _marketing_columns(marketing))


def _headers_by_id_sql(marks: str, *, marketing: bool) -> str:
    sql = _HEADERS_BY_ID_SQL.replace("{marketing}", _marketing_columns(marketing))
    return sql.replace("{marks}", marks)


ItemExtras = dict[str, tuple[str, str, list[str]]]  # item no -> (url, image url, categories)


def _read_only_uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


class DemoErpSource:
    """Streams the demo ERP's orders as order documents (an `OrderSource`).

    One read-only SQLite connection, used from worker threads (one `asyncio.to_thread` per
    chunk) under a lock; memory holds one chunk at a time whatever the table size.
    """

    name = "demo"

    def __init__(self, path: Path, chunk_size: int = 1000) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be 1 or more (got {chunk_size})")
        self.path = Path(path)
        self.chunk_size = chunk_size
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._marketing = True  # settled when the connection opens
        self._items: ItemExtras = {}

    async def count_orders(self, window_start: datetime) -> int:
        since = _utc_text(window_start)
        row = await self._run(lambda conn: conn.execute(_COUNT_SQL, (since,)).fetchone())
        return int(row[0])

    async def iter_orders(self, window_start: datetime) -> AsyncIterator[list[OrderDocument]]:
        since = _utc_text(window_start)
        first = await self._run(lambda conn: conn.execute(_FIRST_ORDER_SQL, (since,)).fetchone())
        if first[0] is None:
            return
        op, key, limit = ">=", first[0], self.chunk_size
        while True:
            chunk = await self._run(
                functools.partial(self._read_chunk, op=op, key=key, since=since, limit=limit)
            )
            if chunk:
                yield chunk
            if len(chunk) < limit:
                return
            op, key = ">", chunk[-1]["order_id"]

    async def get_orders(self, order_ids: Sequence[str]) -> dict[str, OrderDocument | None]:
        """These orders by number, whatever their date: primary-key reads, no window scan."""
        found: dict[str, OrderDocument | None] = dict.fromkeys(order_ids)
        unique = list(found)
        for start in range(0, len(unique), LOOKUP_CHUNK):
            chunk = unique[start : start + LOOKUP_CHUNK]
            for doc in await self._run(functools.partial(self._read_by_id, order_ids=chunk)):
                found[doc["order_id"]] = doc
        return found

    async def check_connection(self) -> str:
        row = await self._run(lambda conn: conn.execute(_COUNT_ALL_SQL).fetchone())
        orders = int(row[0])
        return f"demo database {self.path}, {orders:,} order{'' if orders == 1 else 's'}"

    async def fetch_order(self, order_id: str) -> OrderDocument | None:
        """One order by its number, whatever its date."""
        return (await self.get_orders([order_id]))[order_id]

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    # ---- internals ----

    def _read_chunk(
        self, conn: sqlite3.Connection, *, op: str, key: str, since: str, limit: int
    ) -> list[OrderDocument]:
        sql = _header_sql(op, marketing=self._marketing)
        return _read_chunk(conn, sql=sql, key=key, since=since, limit=limit, items=self._items)

    def _read_by_id(self, conn: sqlite3.Connection, *, order_ids: list[str]) -> list[OrderDocument]:
        return _read_by_id(conn, order_ids=order_ids, marketing=self._marketing, items=self._items)

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return await asyncio.to_thread(self._locked, work)
        except sqlite3.Error as exc:
            raise SourceError(f"demo ERP {self.path}: {exc}") from exc

    def _locked(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            return work(self._connection())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.path.is_file():
                raise SourceError(
                    f"demo ERP database not found: {self.path} (create it with `order-export demo`)"
                )
            conn = sqlite3.connect(_read_only_uri(self.path), uri=True, check_same_thread=False)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(sales_header)")}
            self._marketing = "coupon_code" in columns
            self._items = _item_extras(conn) if self._marketing else {}
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _item_extras(conn: sqlite3.Connection) -> ItemExtras:
    """The catalogue's product pages, pictures and categories (a few hundred items)."""
    extras: ItemExtras = {}
    for item_no, url, image_url, categories in conn.execute(_ITEMS_SQL):
        try:
            names = json.loads(categories)
        except ValueError:
            names = []
        valid = [name for name in names if isinstance(name, str)] if isinstance(names, list) else []
        extras[item_no] = (url, image_url, valid)
    return extras


def _read_chunk(
    conn: sqlite3.Connection,
    *,
    sql: str,
    key: str,
    since: str,
    limit: int,
    items: ItemExtras | None = None,
) -> list[OrderDocument]:
    """Up to `limit` window orders from `key` on, with their lines and latest shipment:
    three queries, whatever the chunk size."""
    headers = conn.execute(sql, (key, since, limit)).fetchall()
    if not headers:
        return []
    first, last = headers[0][0], headers[-1][0]
    # The range may hold orders outside the window (their lines are skipped by the lookup).
    return _documents(
        headers,
        conn.execute(_LINES_SQL, (first, last)),
        conn.execute(_SHIPMENTS_SQL, (first, last)),
        items,
    )


def _read_by_id(
    conn: sqlite3.Connection,
    *,
    order_ids: list[str],
    marketing: bool = True,
    items: ItemExtras | None = None,
) -> list[OrderDocument]:
    """The orders with these numbers (those that exist), built as `_read_chunk` builds them."""
    marks = ",".join("?" * len(order_ids))
    sql = _headers_by_id_sql(marks, marketing=marketing)
    headers = conn.execute(sql, order_ids).fetchall()
    if not headers:
        return []
    found = [row[0] for row in headers]
    marks = ",".join("?" * len(found))
    return _documents(
        headers,
        conn.execute(_LINES_BY_ID_SQL.format(marks=marks), found),
        conn.execute(_SHIPMENTS_BY_ID_SQL.format(marks=marks), found),
        items,
    )


def _documents(
    headers: list[Any],
    line_rows: Iterable[Any],
    shipment_rows: Iterable[Any],
    items: ItemExtras | None = None,
) -> list[OrderDocument]:
    """Order documents from header rows, their line rows (ordered by order and line) and
    their shipment rows (each order's latest last)."""
    docs: dict[str, OrderDocument] = {}
    lines_of: dict[str, list[dict[str, Any]]] = {}
    for (
        order_no, order_date, customer_no, email, first_name, last_name, currency,
        subtotal, discount, shipping_cost, tax, total, shipping_method, payment_method,
        b_line1, b_line2, b_city, b_region, b_postcode, b_country,
        s_line1, s_line2, s_city, s_region, s_postcode, s_country,
        payment_status, coupon_code, campaign_id, landing_site,
    ) in headers:  # fmt: skip
        lines: list[dict[str, Any]] = []
        lines_of[order_no] = lines
        docs[order_no] = {
            "order_id": order_no,
            "order_date": order_date,
            "customer": {
                "id": customer_no,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
            },
            "currency": currency,
            "lines": lines,
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
            "shipping_status": _NOT_SHIPPED,  # settled from the lines below
            "payment_status": payment_status,
            "tracking_number": "",
            "tracking_url": "",
        }
        for field, value in (
            ("coupon_code", coupon_code),
            ("campaign_id", campaign_id),
            ("landing_site", landing_site),
        ):
            if value:
                docs[order_no][field] = value

    open_orders: set[str] = set()
    started_orders: set[str] = set()
    for order_no, line_no, sku, name, quantity, unit_price, incl_tax, shipped in line_rows:
        lines = lines_of.get(order_no)
        if lines is None:
            continue
        line: dict[str, Any] = {
            "line_no": line_no,
            "sku": sku,
            "name": name,
            "quantity": quantity,
            "unit_price": unit_price,
            "unit_price_incl_tax": incl_tax,
        }
        extra = (items or {}).get(sku)
        if extra is not None:
            url, image_url, categories = extra
            if url:
                line["product_url"] = url
            if image_url:
                line["image_url"] = image_url
            if categories:
                line["categories"] = list(categories)
        lines.append(line)
        if shipped < quantity:
            open_orders.add(order_no)
        if shipped > 0:
            started_orders.add(order_no)
    for order_no, lines in lines_of.items():
        if not lines:
            continue
        if order_no not in open_orders:
            docs[order_no]["shipping_status"] = _SHIPPED
        elif order_no in started_orders:
            docs[order_no]["shipping_status"] = _PARTIALLY_SHIPPED

    for order_no, tracking_number, tracking_url in shipment_rows:
        doc = docs.get(order_no)
        if doc is not None:
            doc["tracking_number"] = tracking_number
            doc["tracking_url"] = tracking_url
    return list(docs.values())
