"""The demo ERP behind SQL: its generated orders written into two ERP-shaped tables, and the two
views (interfaces.md §9) that show them to `erp.source = "sql"` (`order-export demo --sql URL`).

The tables are named and shaped as an ERP's might be (`demo_sales_order`,
`demo_sales_order_line`: order_no, ordered_at, ship_via, qty, ...), so that the views show what
an integrator writes: a column renamed, a value computed. docs/source-sql.md prints them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from order_export_tui.orders import OrderDocument, line_categories
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp
from order_export_tui.sources.sql.columns import ADDRESS_PARTS, CATEGORY_SEPARATOR
from order_export_tui.sources.sql.errors import (
    connection_problem,
    detail,
    display_url,
    driver_missing,
)
from order_export_tui.sources.sql.settings import (
    DEFAULT_ORDER_LINES,
    DEFAULT_ORDERS,
    DEFAULT_PASSWORD_ENV,
    SqlSettings,
    engine_url,
    url_problem,
)

ORDERS_TABLE = "demo_sales_order"
LINES_TABLE = "demo_sales_order_line"
_INSERT_CHUNK = 1000

_metadata = sa.MetaData()
_text = sa.Text()
_money = sa.Numeric(18, 4)

orders_table = sa.Table(
    ORDERS_TABLE,
    _metadata,
    sa.Column("order_no", sa.String(64), primary_key=True),
    # SQLite has no time type: there the moment is ISO 8601 text with its offset.
    sa.Column("ordered_at", sa.DateTime(timezone=True).with_variant(_text, "sqlite")),
    sa.Column("customer_no", _text),
    sa.Column("email", _text),
    sa.Column("first_name", _text),
    sa.Column("last_name", _text),
    sa.Column("currency_code", sa.String(3)),
    sa.Column("subtotal", _money),
    sa.Column("discount", _money),
    sa.Column("shipping_cost", _money),
    sa.Column("tax", _money),
    sa.Column("total", _money),
    sa.Column("ship_via", _text),
    sa.Column("paid_with", _text),
    *(sa.Column(f"bill_to_{part}", _text) for part in ADDRESS_PARTS),
    *(sa.Column(f"ship_to_{part}", _text) for part in ADDRESS_PARTS),
    sa.Column("shipping_status", _text),
    sa.Column("payment_status", _text),
    sa.Column("tracking_no", _text),
    sa.Column("tracking_url", _text),
    sa.Column("coupon_code", _text),
    sa.Column("campaign_id", _text),
    sa.Column("landing_site", _text),
    sa.Index("demo_sales_order_ordered_at", "ordered_at", "order_no"),
)

lines_table = sa.Table(
    LINES_TABLE,
    _metadata,
    sa.Column("order_no", sa.String(64), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("item_no", _text),
    sa.Column("description", _text),
    sa.Column("qty", _money),
    sa.Column("unit_price", _money),
    sa.Column("unit_price_incl_tax", _money),
    sa.Column("product_url", _text),
    sa.Column("image_url", _text),
    sa.Column("categories", _text),  # "Men|Shoes"
)


def _address_columns(prefix: str, target: str) -> str:
    return ", ".join(f"{prefix}_{part} AS {target}_{part}" for part in ADDRESS_PARTS)


ORDERS_VIEW_SQL = f"""
CREATE VIEW {{orders}} AS
SELECT order_no AS order_id, ordered_at AS order_date, customer_no AS customer_id, email,
       first_name, last_name, currency_code AS currency,
       subtotal, discount, shipping_cost, tax, total,
       ship_via AS shipping_method, paid_with AS payment_method,
       {_address_columns("bill_to", "billing")},
       {_address_columns("ship_to", "shipping")},
       shipping_status, payment_status, tracking_no AS tracking_number, tracking_url,
       coupon_code, campaign_id, landing_site
FROM {ORDERS_TABLE}
"""

LINES_VIEW_SQL = f"""
CREATE VIEW {{order_lines}} AS
SELECT order_no AS order_id, line_no, item_no AS sku, description AS name, qty AS quantity,
       unit_price, unit_price_incl_tax, product_url, image_url, categories
FROM {LINES_TABLE}
"""


def write_demo_sql(
    url: URL,
    *,
    orders: int = 500,
    seed: int = 1,
    days: int = 30,
    malformed: int = 3,
    orders_view: str = DEFAULT_ORDERS,
    lines_view: str = DEFAULT_ORDER_LINES,
    now: datetime | None = None,
) -> int:
    """(Re)create the demo tables and views at `url` with the demo ERP's generated orders
    (the same arguments give the same orders as `order-export demo`); how many were written."""
    with TemporaryDirectory(prefix="order-export-demo-") as folder:
        path = Path(folder) / "erp-demo.sqlite"
        generate_demo_erp(path, orders=orders, seed=seed, days=days, malformed=malformed, now=now)
        docs = _all_documents(path)
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                _recreate(conn, orders_view, lines_view)
                written = _insert(conn, docs)
                conn.execute(sa.text(ORDERS_VIEW_SQL.format(orders=orders_view)))
                conn.execute(sa.text(LINES_VIEW_SQL.format(order_lines=lines_view)))
        finally:
            engine.dispose()
    return written


def _all_documents(path: Path) -> Iterator[list[OrderDocument]]:
    """Every order of the generated demo ERP, a chunk at a time."""

    async def read() -> list[list[OrderDocument]]:
        source = DemoErpSource(path)
        try:
            long_ago = datetime.now(UTC) - timedelta(days=365 * 100)
            return [chunk async for chunk in source.iter_orders(long_ago)]
        finally:
            await source.close()

    yield from asyncio.run(read())


def _recreate(conn: Connection, orders_view: str, lines_view: str) -> None:
    for view in (orders_view, lines_view):
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
    _metadata.drop_all(conn)
    _metadata.create_all(conn)


def _insert(conn: Connection, chunks: Iterable[list[OrderDocument]]) -> int:
    sqlite = conn.dialect.name == "sqlite"
    written = 0
    for chunk in chunks:
        conn.execute(orders_table.insert(), [_order_row(doc, sqlite) for doc in chunk])
        line_rows = [_line_row(doc["order_id"], line) for doc in chunk for line in doc["lines"]]
        if line_rows:
            conn.execute(lines_table.insert(), line_rows)
        written += len(chunk)
    return written


def _order_row(doc: OrderDocument, sqlite: bool) -> dict[str, Any]:
    customer = doc["customer"]
    moment = doc["order_date"] if sqlite else datetime.fromisoformat(doc["order_date"])
    row: dict[str, Any] = {
        "order_no": doc["order_id"],
        "ordered_at": moment,
        "customer_no": customer["id"],
        "email": customer["email"],
        "first_name": customer["first_name"],
        "last_name": customer["last_name"],
        "currency_code": doc["currency"],
        "ship_via": doc["shipping_method"],
        "paid_with": doc["payment_method"],
        "shipping_status": doc["shipping_status"],
        "payment_status": doc["payment_status"],
        "tracking_no": doc["tracking_number"],
        "tracking_url": doc["tracking_url"],
        "coupon_code": doc.get("coupon_code"),
        "campaign_id": doc.get("campaign_id"),
        "landing_site": doc.get("landing_site"),
    }
    for field in ("subtotal", "discount", "shipping_cost", "tax", "total"):
        row[field] = doc[field]
    for prefix, address in (("bill_to", "billing_address"), ("ship_to", "shipping_address")):
        for part in ADDRESS_PARTS:
            row[f"{prefix}_{part}"] = doc[address][part]
    return row


def _line_row(order_id: str, line: dict[str, Any]) -> dict[str, Any]:
    names = line_categories(line)
    return {
        "order_no": order_id,
        "line_no": line["line_no"],
        "item_no": line["sku"],
        "description": line["name"],
        "qty": line["quantity"],
        "unit_price": line["unit_price"],
        "unit_price_incl_tax": line["unit_price_incl_tax"],
        "product_url": line.get("product_url"),
        "image_url": line.get("image_url"),
        "categories": CATEGORY_SEPARATOR.join(names) if names else None,
    }


class DemoSqlError(Exception):
    """The demo could not be written; the message says why (no credentials in it)."""


def demo_into(
    url_text: str,
    settings_folder: Path,
    *,
    environ: Mapping[str, str] | None = None,
    **generator: Any,
) -> tuple[str, int]:
    """`order-export demo --sql URL`: the URL checked like `erp.sql.url` (a relative SQLite
    path is the settings file's folder's; the password comes from $ERP_SQL_PASSWORD), the demo
    written there; where it went (shown without credentials) and how many orders."""
    problem = url_problem(url_text)
    if problem or not url_text:
        raise DemoSqlError(f"--sql: {problem or 'must be a database URL'}")
    url = engine_url(SqlSettings(url=url_text), settings_folder, environ)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    where = display_url(url)
    try:
        written = write_demo_sql(url, **generator)
    except (sa.exc.SQLAlchemyError, ModuleNotFoundError) as error:
        said = driver_missing(error, url) or connection_problem(error, where, DEFAULT_PASSWORD_ENV)
        raise DemoSqlError(said or f"the database at {where} answered: {detail(error)}") from None
    return where, written
