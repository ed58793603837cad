"""`erp.source = "sql"` (interfaces.md §9) on a real PostgreSQL server and on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from order_export_tui.orders import content_hash, order_problem
from order_export_tui.sources.base import SourceError
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp
from order_export_tui.sources.sql.demo import write_demo_sql
from order_export_tui.sources.sql.settings import SqlSettings, url_problem
from order_export_tui.sources.sql.source import SqlSource
from tests.support.ports import free_port
from tests.support.postgres import PASSWORD_ROLE, PostgresServer
from tests.support.sql_erp import SqlErp, line_row, order_row

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def source_for(erp: SqlErp, environ: Mapping[str, str] | None = None, **options: Any) -> SqlSource:
    section = SqlSettings(url=erp.url, password_env=options.pop("password_env", ""))
    return SqlSource.from_section(
        section, erp.settings_folder / "settings.toml", environ or {}, **options
    )


def postgres_erp(server: PostgresServer, database: str, folder: Path) -> SqlErp:
    url = server.url(database)
    return SqlErp("postgresql", url, sa.create_engine(url), settings_folder=folder)


async def read_all(source: SqlSource, window_start: datetime) -> list[list[dict[str, Any]]]:
    return [chunk async for chunk in source.iter_orders(window_start)]


def add_valid_orders(erp: SqlErp, count: int, start: datetime, lines_each: int = 3) -> None:
    rows, lines = [], []
    for number in range(count):
        order_id = f"SO-{number:06d}"
        rows.append(order_row(order_id, erp.moment(start + timedelta(minutes=number))))
        lines += [line_row(order_id, line_no) for line_no in range(1, lines_each + 1)]
    erp.add_orders(rows, lines)


# ---- reading ------------------------------------------------------------------------------


async def test_the_demo_views_give_the_demo_erps_documents(sql_erp: SqlErp, tmp_path: Path) -> None:
    """The same generated orders, read through the two views, are the very documents the
    embedded demo ERP yields (same content hash), in (order_date, order_id) order."""
    url = sa.make_url(sql_erp.engine.url)
    await asyncio.to_thread(write_demo_sql, url, orders=600, seed=3, days=30, now=NOW)
    generate_demo_erp(tmp_path / "demo.sqlite", orders=600, seed=3, days=30, now=NOW)
    window_start = NOW - timedelta(days=10)
    demo = DemoErpSource(tmp_path / "demo.sqlite")
    demo_chunks = [chunk async for chunk in demo.iter_orders(window_start)]
    expected = {doc["order_id"]: doc for chunk in demo_chunks for doc in chunk}
    await demo.close()

    source = source_for(sql_erp, chunk_size=50)
    try:
        chunks = await read_all(source, window_start)
        count = await source.count_orders(window_start)
    finally:
        await source.close()
    docs = [doc for chunk in chunks for doc in chunk]
    assert len(chunks) > 3 and all(len(chunk) <= 50 for chunk in chunks)
    assert {doc["order_id"] for doc in docs} == set(expected)
    assert count == len(docs)
    for doc in docs:
        assert content_hash(doc) == content_hash(expected[doc["order_id"]]), doc["order_id"]
    keys = [(doc["order_date"], doc["order_id"]) for doc in docs]
    assert keys == sorted(keys)
    # The generator's malformed orders are skipped for the same reasons.
    problems = {doc["order_id"]: order_problem(doc) for doc in docs}
    assert problems == {order_id: order_problem(doc) for order_id, doc in expected.items()}


async def test_lines_come_in_the_same_pass_one_query_per_chunk(sql_erp: SqlErp) -> None:
    sql_erp.create()
    add_valid_orders(sql_erp, 250, NOW - timedelta(days=2))
    source = source_for(sql_erp, chunk_size=40)
    statements: list[str] = []
    sa.event.listen(
        source.engine(),
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    try:
        chunks = await read_all(source, NOW - timedelta(days=3))
    finally:
        await source.close()
    docs = [doc for chunk in chunks for doc in chunk]
    assert len(docs) == 250 and all(len(doc["lines"]) == 3 for doc in docs)
    assert all(order_problem(doc) is None for doc in docs)
    lines_queries = [
        s for s in statements if "FROM order_export_order_lines" in s and "ORDER BY" in s
    ]
    # One lines query per chunk (7 chunks of at most 40), not one per order.
    assert len(lines_queries) == len(chunks) == 7
    orders_reads = [s for s in statements if "ORDER BY" in s and "order_export_orders" in s]
    assert len(orders_reads) == 1


async def test_the_window_leaves_older_orders_out(sql_erp: SqlErp) -> None:
    sql_erp.create()
    window_start = datetime(2026, 11, 20, tzinfo=UTC)
    for order_id, when in (
        ("SO-OLD", window_start - timedelta(seconds=1)),
        ("SO-EDGE", window_start),
        ("SO-NEW", window_start + timedelta(days=3)),
    ):
        sql_erp.add_order(**order_row(order_id, sql_erp.moment(when)))
        sql_erp.add_line(**line_row(order_id))
    source = source_for(sql_erp)
    try:
        docs = [doc for chunk in await read_all(source, window_start) for doc in chunk]
        count = await source.count_orders(window_start)
    finally:
        await source.close()
    assert [doc["order_id"] for doc in docs] == ["SO-EDGE", "SO-NEW"]
    assert count == 2


@pytest.mark.parametrize("kind", ["TIMESTAMP", "DATE"])
async def test_a_naive_time_or_a_date_is_local_time(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, kind: str
) -> None:
    erp = postgres_erp(postgres_server, postgres_database, tmp_path)
    try:
        erp.create(order_types={"order_date": kind})
        local = datetime(2026, 11, 27, 10, 21) if kind == "TIMESTAMP" else date(2026, 11, 27)
        erp.add_order(**order_row("SO-1", local))  # type: ignore[arg-type]
        erp.add_line(**line_row("SO-1"))
        source = source_for(erp)
        window_start = datetime(2026, 11, 27).astimezone()
        docs = [doc for chunk in await read_all(source, window_start) for doc in chunk]
        later = [
            doc
            for chunk in await read_all(source, window_start + timedelta(days=1))
            for doc in chunk
        ]
        await source.close()
    finally:
        erp.engine.dispose()
    expected = datetime.combine(local, datetime.min.time()) if kind == "DATE" else local
    assert docs[0]["order_date"] == expected.astimezone().isoformat()  # type: ignore[union-attr]
    assert order_problem(docs[0]) is None
    assert later == []


async def test_nulls_read_as_empty_text_and_zero(sql_erp: SqlErp) -> None:
    sql_erp.create()
    nullable = ("first_name", "last_name", "discount", "shipping_cost", "tax",
                "shipping_method", "payment_method", "billing_line2", "billing_region",
                "shipping_line2", "tracking_number", "tracking_url", "coupon_code")  # fmt: skip
    when = sql_erp.moment(NOW - timedelta(days=1))
    sql_erp.add_order(**order_row("SO-1", when, **dict.fromkeys(nullable)))
    sql_erp.add_line(**line_row("SO-1", 1, name=None, product_url=None, categories=None))
    sql_erp.add_line(**line_row("SO-1", 2, categories="Men| Shoes ||Sale"))
    source = source_for(sql_erp)
    try:
        doc = (await source.get_orders(["SO-1"]))["SO-1"]
    finally:
        await source.close()
    assert doc is not None and order_problem(doc) is None
    assert doc["customer"]["first_name"] == "" and doc["customer"]["last_name"] == ""
    assert doc["discount"] == 0 and doc["shipping_cost"] == 0 and doc["tax"] == 0
    assert doc["shipping_method"] == "" and doc["tracking_url"] == ""
    assert doc["billing_address"]["line2"] == "" and doc["shipping_address"]["region"] == ""
    assert "coupon_code" not in doc
    first, second = doc["lines"]
    assert first["name"] == "" and "categories" not in first and "product_url" not in first
    assert second["categories"] == ["Men", "Shoes", "Sale"]


async def test_get_orders_finds_orders_outside_the_window_and_names_the_missing(
    sql_erp: SqlErp,
) -> None:
    sql_erp.create()
    add_valid_orders(sql_erp, 5, LONG_AGO)
    source = source_for(sql_erp)
    try:
        found = await source.get_orders(["SO-000003", "SO-000000", "SO-NOPE"])
        window = [doc for chunk in await read_all(source, LONG_AGO) for doc in chunk]
    finally:
        await source.close()
    assert found["SO-NOPE"] is None
    assert found["SO-000003"] is not None and found["SO-000000"] is not None
    by_id = {doc["order_id"]: doc for doc in window}
    # Built exactly as the run builds it: the same content hash.
    assert content_hash(found["SO-000003"]) == content_hash(by_id["SO-000003"])


async def test_numeric_order_ids_are_found_by_their_text(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path
) -> None:
    erp = postgres_erp(postgres_server, postgres_database, tmp_path)
    try:
        erp.create(order_types={"order_id": "BIGINT"}, line_types={"order_id": "BIGINT"})
        erp.add_order(**order_row(1042))  # type: ignore[arg-type]
        erp.add_line(**line_row(1042))  # type: ignore[arg-type]
        source = source_for(erp)
        found = await source.get_orders(["1042", "01042", "x"])
        window = [doc for chunk in await read_all(source, LONG_AGO) for doc in chunk]
        await source.close()
    finally:
        erp.engine.dispose()
    assert found["1042"] is not None and order_problem(found["1042"]) is None
    assert found["01042"] is None and found["x"] is None
    assert [doc["order_id"] for doc in window] == ["1042"]


# ---- a value that cannot be read: the order is skipped, named ------------------------------


async def test_an_unreadable_value_skips_its_order_naming_the_column(sql_erp: SqlErp) -> None:
    sql_erp.create(order_types={"total": "TEXT"}, line_types={"quantity": "TEXT"})
    when = sql_erp.moment(NOW - timedelta(days=1))
    sql_erp.add_orders(
        [order_row("SO-1", when, total="a lot"), order_row("SO-2", when), order_row("SO-3", when)],
        [line_row("SO-1"), line_row("SO-2", quantity="two"), line_row("SO-3")],
    )
    source = source_for(sql_erp)
    try:
        docs = [doc for chunk in await read_all(source, LONG_AGO) for doc in chunk]
    finally:
        await source.close()
    problems = {doc["order_id"]: order_problem(doc) for doc in docs}
    assert problems == {
        "SO-1": "order_export_orders.total of order 'SO-1': 'a lot' is not a number",
        "SO-2": "order_export_order_lines.quantity of order 'SO-2': 'two' is not a number",
        "SO-3": None,
    }


# ---- errors an operator can act on -------------------------------------------------------


async def check_fails(source: SqlSource) -> str:
    try:
        with pytest.raises(SourceError) as caught:
            await source.check_connection()
        with pytest.raises(SourceError) as again:
            await read_all(source, LONG_AGO)
        assert str(again.value) == str(caught.value)
    finally:
        await source.close()
    return str(caught.value)


async def test_a_missing_view_is_named(sql_erp: SqlErp) -> None:
    sql_erp.create()
    sql_erp.execute("DROP VIEW order_export_order_lines")
    message = await check_fails(source_for(sql_erp))
    assert message == (
        "erp.sql.order_lines: the table or view order_export_order_lines does not exist"
    )


async def test_a_missing_column_is_named_with_its_view(sql_erp: SqlErp) -> None:
    sql_erp.create(leave_out=("billing_city", "sku"))
    message = await check_fails(source_for(sql_erp))
    assert message.startswith(
        "erp.sql.orders: the view order_export_orders has no column billing_city"
    )


async def test_an_unreachable_server_says_so(tmp_path: Path) -> None:
    url = f"postgresql://order_export@127.0.0.1:{free_port()}/erp"
    source = SqlSource.from_section(SqlSettings(url=url), tmp_path / "settings.toml", {})
    message = await check_fails(source)
    assert message.startswith("cannot reach the database at postgresql+psycopg://127.0.0.1:")
    assert "Connection refused" in message


async def test_an_sqlite_file_that_cannot_be_opened_says_so(tmp_path: Path) -> None:
    settings = SqlSettings(url="sqlite:///no/such/folder/erp.sqlite", password_env="")
    source = SqlSource.from_section(settings, tmp_path / "settings.toml", {})
    message = await check_fails(source)
    assert message.startswith("cannot reach the database at sqlite:///")
    assert str(tmp_path / "no/such/folder/erp.sqlite") in message


async def test_the_password_comes_from_its_variable_and_never_shows(
    postgres_server: PostgresServer,
    postgres_database: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    superuser = postgres_erp(postgres_server, postgres_database, tmp_path)
    try:
        superuser.create()
        superuser.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {PASSWORD_ROLE}")
    finally:
        superuser.engine.dispose()
    url = postgres_server.url(postgres_database, user=PASSWORD_ROLE)
    settings = SqlSettings(url=url, password_env="ERP_SQL_PASSWORD")
    caplog.set_level(logging.DEBUG)

    right = {"ERP_SQL_PASSWORD": postgres_server.password}
    source = SqlSource.from_section(settings, tmp_path / "settings.toml", right)
    try:
        reached = await source.check_connection()
    finally:
        await source.close()
    assert reached.startswith("database postgresql+psycopg://127.0.0.1:")

    wrong_password = "Wrong-" + postgres_server.password
    source = SqlSource.from_section(
        settings, tmp_path / "settings.toml", {"ERP_SQL_PASSWORD": wrong_password}
    )
    message = await check_fails(source)
    assert message.startswith("the database at postgresql+psycopg://127.0.0.1:")
    assert "refused the login: check erp.sql.url's user name and the password in" in message
    assert "$ERP_SQL_PASSWORD" in message
    for secret in (postgres_server.password, wrong_password):
        assert secret not in message
        assert secret not in caplog.text
        assert secret not in reached


def test_a_url_with_a_password_is_refused_without_echoing_it() -> None:
    problem = url_problem("postgresql://erp:Secret-Pa55@db.example.com/erp")
    assert problem is not None and "Secret-Pa55" not in problem
    assert "must not hold a password" in problem and "erp.sql.password_env" in problem
    assert url_problem("postgresql://erp@db.example.com/erp") is None
    assert url_problem("sqlite:///data/erp.sqlite") is None
    assert url_problem("nosuchdb://x/y") is not None
    assert url_problem("not a url") is not None


def test_postgresql_urls_mean_psycopg_3_and_sqlite_paths_the_settings_folder(
    tmp_path: Path,
) -> None:
    for url in ("postgresql://u@h/db", "postgresql+psycopg://u@h/db", "postgres://u@h/db"):
        source = SqlSource.from_section(SqlSettings(url=url), tmp_path / "s.toml", {})
        assert source.url.drivername == "postgresql+psycopg"
    source = SqlSource.from_section(
        SqlSettings(url="sqlite:///data/erp.sqlite"), tmp_path / "s.toml", {}
    )
    assert source.url.database == str(tmp_path / "data" / "erp.sqlite")


async def test_a_read_stopped_early_gives_its_connection_back(sql_erp: SqlErp) -> None:
    sql_erp.create()
    add_valid_orders(sql_erp, 300, NOW - timedelta(days=2), lines_each=1)
    source = source_for(sql_erp, chunk_size=50)
    try:
        async with contextlib.aclosing(source.iter_orders(LONG_AGO)) as chunks:
            async for chunk in chunks:
                assert len(chunk) == 50
                break
        assert source.engine().pool.checkedout() == 0
        # and the source reads again from the start
        again = [doc for chunk in await read_all(source, LONG_AGO) for doc in chunk]
        assert len(again) == 300
    finally:
        await source.close()


def test_a_missing_driver_says_which_extra_or_package_to_install() -> None:
    def problem(url: str, error: ImportError) -> str:
        return SqlSource(sa.make_url(url), orders="o", order_lines="l").problem(error)

    missing = ModuleNotFoundError("No module named 'MySQLdb'", name="MySQLdb")
    assert problem("mysql://me@db/erp", missing) == (
        "the driver for mysql is not installed (MySQLdb): install it, or install"
        " order-export[mysql] and write erp.sql.url as mysql+pymysql://..."
    )
    missing = ModuleNotFoundError("No module named 'oracledb'", name="oracledb")
    assert problem("oracle+oracledb://me@db/erp", missing) == (
        "the driver for oracle+oracledb is not installed (oracledb): install the Python package"
        " SQLAlchemy names for oracle+oracledb"
    )
    unloadable = ImportError("libodbc.so.2: cannot open shared object file: No such file")
    assert problem("mssql+pyodbc://me@db/erp", unloadable) == (
        "the driver for mssql+pyodbc cannot load: libodbc.so.2: cannot open shared object"
        " file: No such file"
    )


async def test_a_statement_that_takes_too_long_is_given_up_on(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path
) -> None:
    erp = postgres_erp(postgres_server, postgres_database, tmp_path)
    try:
        erp.create()
        erp.add_order(**order_row("SO-1"))
        erp.execute(
            "CREATE FUNCTION slow() RETURNS int LANGUAGE sql AS $$ SELECT 1 FROM pg_sleep(30) $$"
        )
        erp.execute("DROP VIEW order_export_orders")
        erp.execute("CREATE VIEW order_export_orders AS SELECT * FROM erp_orders WHERE slow() = 1")
    finally:
        erp.engine.dispose()
    source = source_for(erp, statement_timeout=1)
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as caught:
            await source.count_orders(LONG_AGO)
    finally:
        await source.close()
    assert time.monotonic() - started < 20
    assert str(caught.value).startswith("the database at postgresql+psycopg://127.0.0.1:")
    assert "did not answer within 1 second (" in str(caught.value)
