"""What the two views hold: their columns (required ones checked, optional ones found) and how
`order_date` compares with the window's start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from order_export_tui.sources.base import SourceError
from order_export_tui.sources.sql.columns import (
    LINE_COLUMNS,
    OPTIONAL_LINE_COLUMNS,
    OPTIONAL_ORDER_COLUMNS,
    ORDER_COLUMNS,
)
from order_export_tui.sources.sql.errors import relation_missing
from order_export_tui.sources.sql.settings import split_relation

# How order_date is stored: it decides what the window's start is compared with.
DateKind = Literal["aware", "naive", "date", "text"]


@dataclass(frozen=True)
class Relation:
    """One view (or table) with the columns read from it, as the database spells them."""

    setting: str  # the settings key naming it: erp.sql.orders
    name: str  # as configured: schema.view or view
    table: sa.TableClause
    spelled: dict[str, str]  # our column name -> as the database spells it
    # Our column name -> its PostgreSQL type OID; empty unless the driver is psycopg.
    type_oids: Mapping[str, int] = field(default_factory=dict)

    def column(self, name: str) -> sa.ColumnClause[Any]:
        return self.table.c[self.spelled[name]]  # type: ignore[no-any-return]

    @property
    def columns(self) -> list[sa.ColumnClause[Any]]:
        return list(self.table.c)


@dataclass(frozen=True)
class Layout:
    orders: Relation
    lines: Relation
    order_optionals: tuple[str, ...]
    line_optionals: tuple[str, ...]
    date_kind: DateKind
    integer_ids: bool  # order_id is a number: ids given as text are compared as numbers
    sqlite: bool

    @property
    def typed(self) -> bool:
        """Every column's type is known before the first row (PostgreSQL through psycopg)."""
        return bool(self.orders.type_oids) and bool(self.lines.type_oids)

    def window_parameter(self, window_start: datetime) -> Any:
        """What `order_date >= ?` compares with: exact for typed columns; for text a day
        early (the exact test is then made on each row's parsed date)."""
        if self.date_kind == "aware":
            return window_start
        if self.date_kind == "naive":
            return window_start.astimezone().replace(tzinfo=None)
        if self.date_kind == "date":
            return first_order_day(window_start)
        return (window_start.astimezone().date() - timedelta(days=1)).isoformat()

    def in_window(self, order_date: sa.ColumnClause[Any], window_start: datetime) -> Any:
        """The count's condition: as the read's, except that SQLite's text dates are compared
        as the moments they are (an offset where they have one, else local time)."""
        if self.date_kind != "text" or not self.sqlite:
            return order_date >= self.window_parameter(window_start)
        has_offset = sa.or_(
            order_date.op("GLOB")("*[+-][0-9][0-9]:[0-9][0-9]"), order_date.like("%Z")
        )
        modifier = sa.case((has_offset, "+0 seconds"), else_="utc")
        since = window_start.astimezone(UTC).isoformat()
        return sa.func.julianday(order_date, modifier) >= sa.func.julianday(since)


def first_order_day(window_start: datetime) -> date:
    """The first order date inside the window: an order dated D is at local midnight of D."""
    day = window_start.astimezone().date()
    if datetime.combine(day, time.min).astimezone() < window_start:
        day += timedelta(days=1)
    return day


def probe(conn: Connection, orders_name: str, lines_name: str) -> Layout:
    """Check both views (cheap: no row is read) and settle how to read them; a missing view
    or required column is a `SourceError` naming it."""
    order_names, order_oids = _column_names(conn, "erp.sql.orders", orders_name)
    line_names, line_oids = _column_names(conn, "erp.sql.order_lines", lines_name)
    _require(orders_name, "erp.sql.orders", order_names, ORDER_COLUMNS)
    _require(lines_name, "erp.sql.order_lines", line_names, LINE_COLUMNS)
    order_optionals = tuple(c for c in OPTIONAL_ORDER_COLUMNS if c in order_names)
    line_optionals = tuple(c for c in OPTIONAL_LINE_COLUMNS if c in line_names)
    orders = _relation(
        "erp.sql.orders", orders_name, order_names, order_oids, ORDER_COLUMNS + order_optionals
    )
    lines = _relation(
        "erp.sql.order_lines", lines_name, line_names, line_oids, LINE_COLUMNS + line_optionals
    )
    kinds = _column_kinds(conn, orders_name, order_names)
    return Layout(
        orders=orders,
        lines=lines,
        order_optionals=order_optionals,
        line_optionals=line_optionals,
        date_kind=_date_kind(kinds.get("order_date")),
        integer_ids=isinstance(kinds.get("order_id"), sa.Integer),
        sqlite=conn.dialect.name == "sqlite",
    )


def _column_names(
    conn: Connection, setting: str, name: str
) -> tuple[dict[str, str], dict[str, int]]:
    """Lower-case column name -> as the database spells it; and, through psycopg, lower-case
    column name -> its type OID (empty for other drivers)."""
    schema, relation = split_relation(name)
    table = sa.table(relation, schema=schema)
    try:
        result = conn.execute(sa.select(sa.text("*")).select_from(table).where(sa.false()))
        keys = list(result.keys())
        oids: dict[str, int] = {}
        if conn.dialect.driver == "psycopg":
            for key, column in zip(keys, result.cursor.description or (), strict=False):
                if isinstance(column.type_code, int):
                    oids[key.lower()] = column.type_code
        result.close()
    except sa.exc.DBAPIError as error:
        if relation_missing(error):
            conn.rollback()
            raise SourceError(f"{setting}: the table or view {name} does not exist") from None
        raise
    return {key.lower(): key for key in keys}, oids


def _require(name: str, setting: str, present: dict[str, str], required: tuple[str, ...]) -> None:
    missing = [column for column in required if column not in present]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise SourceError(
            f"{setting}: the view {name} has no column{plural} {', '.join(missing)}"
            " (docs/source-sql.md lists the columns it needs)"
        )


def _relation(
    setting: str,
    name: str,
    spelled: dict[str, str],
    oids: dict[str, int],
    wanted: tuple[str, ...],
) -> Relation:
    schema, relation = split_relation(name)
    table = sa.table(relation, *(sa.column(spelled[c]) for c in wanted), schema=schema)
    type_oids = {c: oids[c] for c in wanted if c in oids}
    if len(type_oids) != len(wanted):
        type_oids = {}
    return Relation(setting=setting, name=name, table=table, spelled=spelled, type_oids=type_oids)


def _column_kinds(conn: Connection, name: str, spelled: dict[str, str]) -> dict[str, Any]:
    """The declared types of order_id and order_date (SQLite's are text whatever they say)."""
    if conn.dialect.name == "sqlite":
        return {}
    schema, relation = split_relation(name)
    try:
        columns = sa.inspect(conn).get_columns(relation, schema=schema)
    except (sa.exc.SQLAlchemyError, NotImplementedError):
        return {}
    wanted = {spelled["order_id"]: "order_id", spelled["order_date"]: "order_date"}
    return {wanted[c["name"]]: c["type"] for c in columns if c["name"] in wanted}


def _date_kind(kind: Any) -> DateKind:
    if isinstance(kind, sa.DateTime):
        return "aware" if kind.timezone else "naive"
    if isinstance(kind, sa.Date):
        return "date"
    return "text"
