"""Any row the two views can hold becomes a valid order document or a skip with its reason,
never an exception: SQLite holds any value in any column, so it is the widest test bed; the
mapping also gets the values PostgreSQL's types come back as (Decimal, dates, UUIDs, JSON)."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_export_tui.orders import UNREADABLE, content_hash, order_problem
from order_export_tui.sources.sql.columns import (
    LINE_COLUMNS,
    OPTIONAL_LINE_COLUMNS,
    OPTIONAL_ORDER_COLUMNS,
    ORDER_COLUMNS,
)
from order_export_tui.sources.sql.mapping import DocumentMaker
from order_export_tui.sources.sql.settings import SqlSettings
from order_export_tui.sources.sql.source import SqlSource
from tests.support.sql_erp import SqlErp, line_row, order_row

LONG_AGO = datetime(1900, 1, 1, tzinfo=UTC)

# What an SQLite column can hold: NULL, 64-bit integers, floats, text, blobs.
sqlite_values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.sampled_from(["", " ", "12.50", "-1", "2026-11-27", "2026-11-27 10:21:00",
                     "2026-11-27T10:21:00+02:00", "EUR", "paid", "shipped", "a|b||c",
                     "https://shop.example.com/p/1", "jane@example.com", "1e400", "NaN"]),
)  # fmt: skip

# What drivers give for PostgreSQL's (and other servers') types.
server_values = st.one_of(
    sqlite_values,
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-14))])),
    st.dates(),
    st.uuids(),
    st.booleans(),
    st.integers(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _some_columns(columns: tuple[str, ...], values: st.SearchStrategy[Any]) -> Any:
    """A valid row with some of its columns replaced by arbitrary values."""
    return st.dictionaries(st.sampled_from(columns), values, max_size=4)


def assert_valid_or_reasoned(doc: dict[str, Any]) -> None:
    assert isinstance(doc["order_id"], str)
    problem = order_problem(doc)
    if problem is None:
        content_hash(doc)  # a valid document is JSON through and through
    else:
        assert isinstance(problem, str) and problem


@settings(max_examples=300, deadline=None)
@given(
    order=_some_columns((*ORDER_COLUMNS, *OPTIONAL_ORDER_COLUMNS), server_values),
    lines=st.lists(
        _some_columns((*LINE_COLUMNS, *OPTIONAL_LINE_COLUMNS), server_values), max_size=3
    ),
)
def test_any_values_the_drivers_give_map_to_a_document_or_a_reason(
    order: dict[str, Any], lines: list[dict[str, Any]]
) -> None:
    maker = DocumentMaker("orders", "lines", OPTIONAL_ORDER_COLUMNS, OPTIONAL_LINE_COLUMNS)
    row = {**order_row("SO-1"), "coupon_code": None, "campaign_id": None, "landing_site": None}
    row.update(order)
    line_rows = []
    for number, overrides in enumerate(lines, 1):
        line = {**line_row("SO-1", number), "product_url": None, "image_url": None}
        line["categories"] = None
        line.update(overrides)
        line_rows.append(tuple(line[c] for c in maker.line_columns))
    order_values = tuple(row[c] for c in maker.order_columns)
    doc = maker.document(order_values, line_rows)
    assert_valid_or_reasoned(doc)
    # The fast path for plain rows builds what the careful path builds.
    plain = maker._plain_order(order_values, doc["order_id"])
    if plain is not None:
        assert plain == maker._order(order_values, doc["order_id"])
    for line in line_rows:
        plain_line = maker._plain_line(line)
        if plain_line is not None:
            assert plain_line == maker._line(line)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    order=_some_columns((*ORDER_COLUMNS, *OPTIONAL_ORDER_COLUMNS), sqlite_values),
    lines=st.lists(
        _some_columns((*LINE_COLUMNS, *OPTIONAL_LINE_COLUMNS), sqlite_values), max_size=3
    ),
)
def test_any_row_an_sqlite_view_holds_is_a_document_or_a_skip_with_its_reason(
    order: dict[str, Any], lines: list[dict[str, Any]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'erp.sqlite'}"
        engine = sa.create_engine(url)
        erp = SqlErp("sqlite", url, engine, settings_folder=Path(folder))
        try:
            erp.create(order_types={"order_date": "ANY"}, line_types={"line_no": "ANY"})
            base = order_row("SO-1", datetime(2026, 11, 27, tzinfo=UTC).isoformat())
            erp.add_order(**{**base, **order})
            for number, overrides in enumerate(lines, 1):
                erp.add_line(**{**line_row("SO-1", number), **overrides})
        finally:
            engine.dispose()
        docs = asyncio.run(_read(url, order.get("order_id", "SO-1")))
    for doc in docs:
        assert_valid_or_reasoned(doc)


async def _read(url: str, order_id: object) -> list[dict[str, Any]]:
    source = SqlSource.from_section(SqlSettings(url=url, password_env=""), Path("/"), {})
    try:
        docs = [doc async for chunk in source.iter_orders(LONG_AGO) for doc in chunk]
        if isinstance(order_id, str):
            found = (await source.get_orders([order_id]))[order_id]
            if found is not None:
                docs.append(found)
        return docs
    finally:
        await source.close()


def test_the_values_postgresql_types_come_back_as_are_read() -> None:
    maker = DocumentMaker("orders", "lines", (), ())
    row = order_row(
        "SO-1",
        datetime(2026, 11, 27, 10, 21, tzinfo=timezone(timedelta(hours=2))),
        customer_id=uuid.UUID(int=7),
        total=Decimal("29.20"),
    )
    line = {**line_row("SO-1", 1), "line_no": Decimal("1"), "quantity": Decimal("2")}
    doc = maker.document(
        tuple(row[c] for c in maker.order_columns), [tuple(line[c] for c in maker.line_columns)]
    )
    assert order_problem(doc) is None
    assert doc["order_date"] == "2026-11-27T08:21:00+00:00"
    assert doc["customer"]["id"] == str(uuid.UUID(int=7))
    assert doc["total"] == 29.2 and doc["lines"][0]["quantity"] == 2
    assert doc["lines"][0]["line_no"] == 1
    day = maker.document(
        tuple({**row, "order_date": date(2026, 11, 27)}[c] for c in maker.order_columns), []
    )
    assert day["order_date"] == datetime(2026, 11, 27).astimezone().isoformat()


def test_an_unreadable_reason_is_shown_printable_and_bounded() -> None:
    doc = {"order_id": "SO-1", UNREADABLE: "\x1b[31mred\x00" * 100}
    problem = order_problem(doc)
    assert problem is not None and problem.startswith("[31mred[31mred")
    assert len(problem) <= 300 and problem.isprintable()
