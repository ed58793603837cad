"""The window's read on PostgreSQL (sources/sql/typed.py): the database does the NULL rules,
rows stay psycopg's tuples, amounts load as floats; every order it gives is the one the careful
path gives (what `get_orders` builds, through SQLAlchemy rows and Decimal amounts), and what it
cannot take is skipped with its reason, never the end of the read."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_export_tui.orders import order_problem
from order_export_tui.sources.base import SourceError
from order_export_tui.sources.sql.settings import SqlSettings
from order_export_tui.sources.sql.source import SqlSource
from tests.support.postgres import PostgresServer
from tests.support.sql_erp import SqlErp, line_row, order_row

LONG_AGO = datetime(1900, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def erp(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path
) -> Iterator[SqlErp]:
    url = postgres_server.url(postgres_database)
    # The tables change their column types between examples: no statement kept prepared.
    engine = sa.create_engine(url, connect_args={"prepare_threshold": None})
    try:
        yield SqlErp("postgresql", url, engine, settings_folder=tmp_path)
    finally:
        engine.dispose()


def source_for(erp: SqlErp, **options: Any) -> SqlSource:
    section = SqlSettings(url=erp.url, password_env="")
    return SqlSource.from_section(section, erp.settings_folder / "settings.toml", {}, **options)


async def window_and_lookup(erp: SqlErp, **options: Any) -> tuple[list[Any], dict[str, Any]]:
    """The window read (the typed path) and the same orders by id (the careful path)."""
    source = source_for(erp, **options)
    try:
        docs = [doc async for chunk in source.iter_orders(LONG_AGO) for doc in chunk]
        looked_up = await source.get_orders([doc["order_id"] for doc in docs])
        assert source._layout is not None and source._layout.typed
    finally:
        await source.close()
    return docs, looked_up


# ---- every order the typed read gives is the careful path's ------------------------------

texts = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8),
    st.sampled_from(["", " ", "EUR", "jane@example.com", "paid", "shipped", "a| b||c", "NL"]),
)
numerics = st.one_of(
    st.none(),
    st.decimals(min_value=-(10**20), max_value=10**20, places=4),
    st.decimals(min_value=-(10**17), max_value=10**17, allow_nan=False),
    st.sampled_from([Decimal("NaN"), Decimal("0"), Decimal("2.50"), Decimal("1e16")]),
)
moments = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1901, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-14))]),
    ),
)
# Column type -> the values a column of it can hold.
KINDS: dict[str, st.SearchStrategy[Any]] = {
    "TEXT": texts,
    "NUMERIC": numerics,
    "NUMERIC(12,2)": st.one_of(st.none(), st.decimals(-(10**9), 10**9, places=2)),
    "INTEGER": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
    "BIGINT": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    "DOUBLE PRECISION": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    "TIMESTAMPTZ": moments,
}
# Columns whose type varies between examples, and the types each may have.
ORDER_TYPES = {
    "customer_id": ("TEXT", "INTEGER"),
    "email": ("TEXT",),
    "currency": ("TEXT",),
    "subtotal": ("NUMERIC", "NUMERIC(12,2)", "INTEGER", "DOUBLE PRECISION", "TEXT"),
    "discount": ("NUMERIC", "INTEGER"),
    "total": ("NUMERIC", "DOUBLE PRECISION"),
    "billing_line2": ("TEXT",),
    "tracking_url": ("TEXT",),
    "coupon_code": ("TEXT", "INTEGER"),
    "order_date": ("TIMESTAMPTZ",),
}
LINE_TYPES = {
    "line_no": ("INTEGER", "BIGINT", "NUMERIC"),
    "name": ("TEXT",),
    "quantity": ("NUMERIC", "INTEGER", "DOUBLE PRECISION"),
    "unit_price": ("NUMERIC", "TEXT"),
    "categories": ("TEXT",),
    "product_url": ("TEXT",),
}


@st.composite
def layouts_and_rows(
    draw: st.DrawFn,
) -> tuple[dict[str, str], dict[str, str], dict[str, Any], list[dict[str, Any]]]:
    order_types = {column: draw(st.sampled_from(kinds)) for column, kinds in ORDER_TYPES.items()}
    line_types = {column: draw(st.sampled_from(kinds)) for column, kinds in LINE_TYPES.items()}
    changed = draw(st.lists(st.sampled_from(sorted(ORDER_TYPES)), max_size=4, unique=True))
    if order_types["customer_id"] == "INTEGER":  # "C-4711" does not fit
        changed.append("customer_id")
    order = order_row("SO-1", NOW - timedelta(days=1))
    order.update({column: draw(KINDS[order_types[column]]) for column in changed})
    lines = []
    for number in range(1, draw(st.integers(0, 3)) + 1):
        line = line_row("SO-1", number, categories="Men|Shoes", product_url="")
        for column in draw(st.lists(st.sampled_from(sorted(LINE_TYPES)), max_size=3, unique=True)):
            line[column] = draw(KINDS[line_types[column]])
        lines.append(line)
    return order_types, line_types, order, lines


def _fits(value: Any, kind: str) -> Any:
    """A generated value as its column stores it (a text column takes any value's text)."""
    if value is None or kind != "TEXT" or isinstance(value, str):
        return value
    return str(value)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=layouts_and_rows())
def test_any_row_reads_as_the_careful_path_reads_it(erp: SqlErp, case: Any) -> None:
    order_types, line_types, order, lines = case
    erp.create(order_types=order_types, line_types=line_types)
    erp.add_order(**{c: _fits(v, order_types.get(c, "")) for c, v in order.items()})
    for line in lines:
        erp.add_line(**{c: _fits(v, line_types.get(c, "")) for c, v in line.items()})
    docs, looked_up = asyncio.run(window_and_lookup(erp))
    if order["order_date"] is None:
        assert docs == []  # NULL is never in a window
        return
    (doc,) = docs
    careful = looked_up[doc["order_id"]]
    assert careful is not None
    assert doc == careful
    assert order_problem(doc) == order_problem(careful)


# ---- a chunk's documents handed over a part at a time ------------------------------------


async def read_in_parts(erp: SqlErp, chunk_size: int, part_size: int) -> list[list[Any]]:
    """The window's documents as `iter_orders` hands them over."""
    source = source_for(erp, chunk_size=chunk_size, part_size=part_size)
    try:
        return [chunk async for chunk in source.iter_orders(LONG_AGO)]
    finally:
        await source.close()


def assert_parts_give_the_whole_chunks(erp: SqlErp, chunk_size: int, part_size: int) -> None:
    """Read in parts, the window gives the documents that whole chunks give (key order and 2
    against 2.0 included), each part at most `part_size` long, no two sharing their lines."""
    parts = asyncio.run(read_in_parts(erp, chunk_size, part_size))
    (whole,) = asyncio.run(read_in_parts(erp, 1000, 1000)) or [[]]
    docs = [doc for part in parts for doc in part]
    assert [orjson.dumps(doc) for doc in docs] == [orjson.dumps(doc) for doc in whole]
    assert all(0 < len(part) <= part_size for part in parts)
    shared = [id(doc["lines"]) for doc in docs if "lines" in doc]
    assert len(set(shared)) == len(shared)


def test_parts_of_a_chunk_keep_each_order_its_lines(erp: SqlErp) -> None:
    """An id twice in one chunk, in two parts; an order the careful path builds in the
    middle: each keeps its lines (or its reason) as when the chunk is built whole."""
    erp.create()
    when = NOW - timedelta(days=1)
    erp.add_orders(
        [order_row("SO-1", when), order_row("SO-2", when + timedelta(seconds=1)),
         order_row("SO-1", when + timedelta(seconds=2)),
         order_row("SO-3", when + timedelta(seconds=3), total=Decimal("NaN")),
         order_row("SO-4", when + timedelta(seconds=4))],
        [line_row("SO-1", 1), line_row("SO-1", 2), line_row("SO-2", 1),
         {**line_row("SO-2", 2), "line_no": None}, line_row("SO-3", 1), line_row("SO-4", 1)],
    )  # fmt: skip
    parts = asyncio.run(read_in_parts(erp, 5, 2))
    assert [[doc["order_id"] for doc in part] for part in parts] == [
        ["SO-1", "SO-2"],
        ["SO-1", "SO-3"],
        ["SO-4"],
    ]
    first, second, third = parts
    assert first[0]["lines"] == second[0]["lines"] and len(first[0]["lines"]) == 2
    assert order_problem(first[1]) is not None and "line_no" in order_problem(first[1])
    assert order_problem(second[1]) is not None and "total" in order_problem(second[1])
    assert [line["line_no"] for line in third[0]["lines"]] == [1]
    assert_parts_give_the_whole_chunks(erp, 5, 2)


ODD_IDS = st.sampled_from(["SO-1", "SO-2", 'SO "3"', "SO\\4", "a,b", "{x}", "NULL", " s ", ""])


@st.composite
def windows(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Orders (ids repeating, some that an array literal must quote, some only the careful
    path builds) and their lines."""
    orders = []
    for number in range(draw(st.integers(0, 9))):
        order = order_row(draw(ODD_IDS), NOW - timedelta(hours=number))
        if draw(st.integers(0, 5)) == 0:
            order["total"] = Decimal("NaN")
        orders.append(order)
    lines = []
    for order_id in sorted({order["order_id"] for order in orders}):
        for line_no in range(1, draw(st.integers(0, 3)) + 1):
            line = line_row(order_id, line_no, quantity=draw(st.sampled_from([1, 2.5, 3])))
            if draw(st.integers(0, 7)) == 0:
                line["line_no"] = None
            lines.append(line)
    return orders, lines


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(window=windows(), chunk_size=st.integers(1, 6), part_size=st.integers(1, 6))
def test_any_window_read_in_parts_is_the_window_read_whole(
    erp: SqlErp, window: Any, chunk_size: int, part_size: int
) -> None:
    orders, lines = window
    erp.create()
    erp.add_orders(orders, lines)
    assert_parts_give_the_whole_chunks(erp, chunk_size, part_size)


# ---- what the typed read cannot take is one order's skip, named --------------------------


async def test_a_value_beyond_a_float_or_a_time_skips_only_its_order(erp: SqlErp) -> None:
    erp.create()
    when = NOW - timedelta(days=1)
    erp.add_orders(
        [order_row("SO-1", when), order_row("SO-2", when), order_row("SO-3", when),
         order_row("SO-4", when)],
        [line_row("SO-1"), line_row("SO-2"), line_row("SO-3"), line_row("SO-4")],
    )  # fmt: skip
    erp.execute("UPDATE erp_orders SET total = 1e400 WHERE order_id = 'SO-1'")
    erp.execute("UPDATE erp_lines SET unit_price = 'NaN' WHERE order_id = 'SO-2'")
    erp.execute("UPDATE erp_orders SET order_date = 'infinity' WHERE order_id = 'SO-3'")
    source = source_for(erp)
    try:
        docs = [doc async for chunk in source.iter_orders(LONG_AGO) for doc in chunk]
    finally:
        await source.close()
    problems = {doc["order_id"]: order_problem(doc) for doc in docs}
    assert set(problems) == {"SO-1", "SO-2", "SO-3", "SO-4"}
    assert (
        problems["SO-1"] == "order_export_orders.total of order 'SO-1': nan is not a finite number"
    )
    assert problems["SO-2"] == (
        "order_export_order_lines.unit_price of order 'SO-2': nan is not a finite number"
    )
    assert problems["SO-3"] is not None and "order_date" in problems["SO-3"]
    assert problems["SO-4"] is None


async def test_lines_the_fast_build_refuses_send_their_order_the_careful_way(
    erp: SqlErp,
) -> None:
    """A NULL line number in the middle of a chunk: that order is skipped naming it, its
    neighbours (and a second order with the same id) keep their lines."""
    erp.create()
    when = NOW - timedelta(days=1)
    erp.add_orders(
        [order_row("SO-1", when), order_row("SO-2", when), order_row("SO-3", when),
         order_row("SO-3", when + timedelta(seconds=1))],
        [line_row("SO-1", 1), line_row("SO-1", 2), line_row("SO-2", 1),
         {**line_row("SO-2", 2), "line_no": None}, line_row("SO-3", 1), line_row("SO-3", 2)],
    )  # fmt: skip
    docs, looked_up = await window_and_lookup(erp, chunk_size=3)
    assert [doc["order_id"] for doc in docs] == ["SO-1", "SO-2", "SO-3", "SO-3"]
    assert [len(doc["lines"]) for doc in docs if order_problem(doc) is None] == [2, 2, 2]
    assert docs[1] == looked_up["SO-2"]
    assert order_problem(docs[1]) == (
        "order_export_order_lines.line_no of order 'SO-2': None is not a whole number below 2**53"
    )
    assert docs[2]["lines"] == docs[3]["lines"] and docs[2]["lines"] is not docs[3]["lines"]


async def test_the_connection_goes_back_reading_any_numeric(erp: SqlErp) -> None:
    """After a window's read the pooled connection reads a numeric beyond a float's range
    again (as infinity, which a lookup refuses by name) instead of raising."""
    erp.create()
    erp.add_orders([order_row("SO-1", NOW - timedelta(days=1))], [line_row("SO-1")])
    source = source_for(erp)
    try:
        docs = [doc async for chunk in source.iter_orders(LONG_AGO) for doc in chunk]
        assert docs[0]["total"] == 29.2
        with source.engine().connect() as conn:
            value = conn.execute(sa.text("SELECT 1e400::numeric, 2.5::numeric")).one()
        assert tuple(value) == (float("inf"), 2.5)
        erp.execute("UPDATE erp_orders SET total = 1e400")
        found = (await source.get_orders(["SO-1"]))["SO-1"]
        assert found is not None
        assert order_problem(found) == (
            "order_export_orders.total of order 'SO-1': inf is not a finite number"
        )
    finally:
        await source.close()


# ---- amounts at the edges of a double: the careful path's floats ---------------------------


HALF_SMALLEST = Decimal(2) ** -1075  # the largest amount that rounds to a zero
EDGE_AMOUNTS = [
    Decimal("1e-400"), Decimal("-1e-400"), HALF_SMALLEST, -HALF_SMALLEST,
    HALF_SMALLEST * Decimal("1.0000001"), Decimal("3e-324"), Decimal("1e-310"),
    Decimal("2.2250738585072014e-308"), Decimal("0.1"), Decimal("-0.00"), Decimal("12.60"),
    Decimal("123456789012.345678901234567890123"), Decimal("9.999999999999999e299"),
    Decimal("-9.999999999999999e299"), Decimal("0.30000000000000004"),
]  # fmt: skip


async def test_edge_amounts_read_as_the_careful_paths_floats(erp: SqlErp) -> None:
    """An amount that rounds to a zero, a subnormal, many digits, just below 1e300: the
    window's read gives the careful path's document; 1e300 or more is NaN, skipped by name."""
    erp.create()
    when = NOW - timedelta(days=1)
    orders, lines = [], []
    for number, value in enumerate([*EDGE_AMOUNTS, Decimal("1e300"), Decimal("-1e301")]):
        order_id = f"SO-{number:02d}"
        orders.append(order_row(order_id, when + timedelta(seconds=number), total=value))
        lines.append(line_row(order_id, 1, unit_price=value, quantity=value))
    erp.add_orders(orders, lines)
    docs, looked_up = await window_and_lookup(erp)
    assert len(docs) == len(EDGE_AMOUNTS) + 2
    for doc, value in zip(docs, EDGE_AMOUNTS, strict=False):
        assert orjson.dumps(doc) == orjson.dumps(looked_up[doc["order_id"]]), value
        assert doc["total"] == float(value) and doc["lines"][0]["unit_price"] == float(value)
    for doc in docs[len(EDGE_AMOUNTS) :]:
        assert order_problem(doc) == (
            f"order_export_orders.total of order {doc['order_id']!r}: nan is not a finite number"
        )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    amounts=st.lists(
        st.one_of(
            st.decimals(allow_nan=False, allow_infinity=False).filter(
                lambda value: abs(value) < Decimal("1e300")
            ),
            st.sampled_from(EDGE_AMOUNTS),
            st.none(),
        ),
        min_size=4,
        max_size=4,
    )
)
def test_any_numeric_amount_reads_as_the_careful_path_reads_it(
    erp: SqlErp, amounts: list[Decimal | None]
) -> None:
    subtotal, total, quantity, unit_price = amounts
    erp.create()
    erp.add_orders(
        [order_row("SO-1", NOW - timedelta(days=1), subtotal=subtotal, total=total)],
        [line_row("SO-1", 1, quantity=quantity, unit_price=unit_price)],
    )
    docs, looked_up = asyncio.run(window_and_lookup(erp))
    (doc,) = docs
    assert orjson.dumps(doc) == orjson.dumps(looked_up["SO-1"])


# ---- the next chunk fetched while one is built --------------------------------------------


def fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("order-export-sql-fetch")]


async def test_a_read_stopped_while_the_next_chunk_is_fetched_leaves_nothing_behind(
    erp: SqlErp,
) -> None:
    erp.create()
    when = NOW - timedelta(days=1)
    erp.add_orders(
        [order_row(f"SO-{n}", when + timedelta(seconds=n)) for n in range(9)],
        [line_row(f"SO-{n}") for n in range(9)],
    )
    source = source_for(erp, chunk_size=3, part_size=2)
    try:
        async with contextlib.aclosing(source.iter_orders(LONG_AGO)) as parts:
            async for part in parts:
                assert [doc["order_id"] for doc in part] == ["SO-0", "SO-1"]
                break
        assert fetch_threads() == []
        assert source.engine().pool.checkedout() == 0
        docs = [doc async for part in source.iter_orders(LONG_AGO) for doc in part]
        assert [doc["order_id"] for doc in docs] == [f"SO-{n}" for n in range(9)]
        assert fetch_threads() == []
    finally:
        await source.close()


async def test_a_chunk_fetched_ahead_that_fails_ends_the_read_after_the_ones_before(
    erp: SqlErp,
) -> None:
    """The database's error for the second chunk comes when that chunk is asked for, as the
    read's `SourceError`: the first chunk's documents were all handed over before it."""
    erp.create()
    when = NOW - timedelta(days=1)
    erp.add_orders(
        [order_row(f"SO-{n}", when + timedelta(seconds=n)) for n in range(6)],
        [line_row(f"SO-{n}") for n in range(6)],
    )
    erp.execute(
        "CREATE FUNCTION refuse(id text, sku text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN"
        " IF id = 'SO-4' THEN RAISE EXCEPTION 'order % is locked', id; END IF;"
        " RETURN sku; END $$"
    )
    erp.execute("DROP VIEW order_export_order_lines")
    erp.execute(  # the function runs for the lines a chunk asks for only
        "CREATE VIEW order_export_order_lines AS SELECT order_id, line_no,"
        " refuse(order_id, sku) AS sku, name, quantity, unit_price, unit_price_incl_tax,"
        " product_url, image_url, categories FROM erp_lines"
    )
    source = source_for(erp, chunk_size=3, part_size=3)
    seen: list[str] = []
    try:
        with pytest.raises(SourceError) as caught:
            async for part in source.iter_orders(LONG_AGO):
                seen.extend(doc["order_id"] for doc in part)
    finally:
        await source.close()
    assert seen == ["SO-0", "SO-1", "SO-2"]
    assert "order SO-4 is locked" in str(caught.value)
    assert fetch_threads() == []
