"""The SQL source on a real PostgreSQL: read rate beside a bare psycopg read, peak RSS, a run.

    python benchmarks/sql_source.py                        # 100,000 and 1,000,000 orders
    python benchmarks/sql_source.py --orders 100000        # one size

A PostgreSQL server is started for the benchmark (as tests/support/postgres.py does: Debian's
postgresql, run as the `postgres` user when this is root). For each size, N orders (3 lines
each, dated over the last 25 days) are bulk-loaded with COPY into two tables behind the two
views of interfaces.md §9. Each measurement then runs in a fresh child process, so its peak RSS
(ru_maxrss) is that of the work alone:
  - bare psycopg: the plain read of the same views in the same chunks (every column of the
    orders view through a named cursor ordered by order_date, order_id; each chunk's lines by
    `order_id = ANY(...)`), rows fetched as tuples (numeric as Decimal, psycopg's default) and
    counted, nothing built: the ceiling;
  - source: `SqlSource.iter_orders` over the window, every document built (its query also
    asks the server for the NULL rules and the ISO order date: sources/sql/typed.py);
  - run: a whole export run with erp.source = "sql", SQL source -> engine -> file destination
    (every order new).
Both reads run under one garbage-collector policy (--collector; the run always has the
commands' "settled" one). `--json-probe` adds a third read, taken in the same turns: the server
writing each document as JSON for orjson to parse (benchmarks/sql_json_probe.py: a probe of
that idea, not the product's read; its first chunk is checked against the source's).
Goal (issue 23): the source >= 0.7x the bare read; peak RSS flat from 100,000 to 1,000,000.
Rates are wall-clock (the server's time included); "client CPU" is the child's own user+system
time, which a machine busy with other work disturbs less.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHUNK = 1000
LINES_PER_ORDER = 3
ADDRESS = ("line1", "line2", "city", "region", "postcode", "country")
ORDER_COLUMNS = (
    "order_id", "order_date", "customer_id", "email", "first_name", "last_name", "currency",
    "subtotal", "discount", "shipping_cost", "tax", "total", "shipping_method", "payment_method",
    *(f"billing_{part}" for part in ADDRESS), *(f"shipping_{part}" for part in ADDRESS),
    "shipping_status", "payment_status", "tracking_number", "tracking_url",
)  # fmt: skip
LINE_COLUMNS = (
    "order_id", "line_no", "sku", "name", "quantity", "unit_price", "unit_price_incl_tax",
    "product_url", "image_url", "categories",
)  # fmt: skip
_TYPES = {
    "order_date": "timestamptz",
    "line_no": "integer",
    "quantity": "numeric(12,2)",
    **{name: "numeric(18,2)" for name in ("subtotal", "discount", "shipping_cost", "tax")},
    "total": "numeric(18,2)",
    "unit_price": "numeric(18,2)",
    "unit_price_incl_tax": "numeric(18,2)",
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---- loading ------------------------------------------------------------------------------


def load(connect: Any, orders: int) -> float:
    """Two tables and the two views, N orders COPYed in; seconds taken."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    with connect() as conn:
        for name, columns, key in (
            ("erp_orders", ORDER_COLUMNS, "order_id"),
            ("erp_lines", LINE_COLUMNS, "order_id, line_no"),
        ):
            body = ", ".join(f"{c} {_TYPES.get(c, 'text')}" for c in columns)
            conn.execute(f"CREATE TABLE {name} ({body}, PRIMARY KEY ({key}))")
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY erp_orders ({', '.join(ORDER_COLUMNS)}) FROM STDIN") as copy:
                for number in range(orders):
                    copy.write_row(_order(number, orders, now))
            with cursor.copy(f"COPY erp_lines ({', '.join(LINE_COLUMNS)}) FROM STDIN") as copy:
                for number in range(orders):
                    for line_no in range(1, LINES_PER_ORDER + 1):
                        copy.write_row(_line(number, line_no))
        conn.execute("CREATE INDEX erp_orders_date ON erp_orders (order_date, order_id)")
        conn.execute("CREATE VIEW order_export_orders AS SELECT * FROM erp_orders")
        conn.execute("CREATE VIEW order_export_order_lines AS SELECT * FROM erp_lines")
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def _order(number: int, orders: int, now: datetime) -> tuple[Any, ...]:
    when = now - timedelta(days=25) + timedelta(seconds=number * (25 * 86400 // max(orders, 1)))
    address = (f"Main St {number % 300}", "", "Utrecht", "", "3511", "NL")
    return (
        f"SO-{number:08d}", when, f"C-{number % 50_000}", f"c{number % 50_000}@example.com",
        "Jane", "Doe", "EUR", Decimal("60.00"), Decimal("0.00"), Decimal("5.00"),
        Decimal("12.60"), Decimal("77.60"), "DHL", "iDEAL", *address, *address,
        "not_shipped", "paid", "", "",
    )  # fmt: skip


def _line(number: int, line_no: int) -> tuple[Any, ...]:
    return (
        f"SO-{number:08d}", line_no, f"ITEM-{(number + line_no) % 400:04d}", "Premium Umbrella",
        Decimal("2"), Decimal("10.00"), Decimal("12.10"),
        "https://shop.example.com/p/umbrella", "", "Accessories|Umbrellas",
    )  # fmt: skip


# ---- children -----------------------------------------------------------------------------


def window_start() -> datetime:
    return (datetime.now().astimezone() - timedelta(days=30)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


def settle(collector: str) -> None:
    """The garbage-collector policy of the child: "settled" as `order-export run` and the
    daemon set it (`order_export_tui.collector`), or CPython's "default"."""
    if collector == "settled":
        from order_export_tui.collector import settle_collector

        settle_collector()


def child_bare(url: str, collector: str) -> dict[str, float]:
    import psycopg

    from order_export_tui.sources.sql.settings import SqlSettings, engine_url

    address = engine_url(SqlSettings(url=url, password_env=""), Path("/"))
    settle(collector)
    cpu = cpu_seconds()
    started = time.perf_counter()
    orders = lines = 0
    with psycopg.connect(
        host=address.host, port=address.port, user=address.username, dbname=address.database
    ) as conn:
        order_sql = (
            f"SELECT {', '.join(ORDER_COLUMNS)} FROM order_export_orders"
            " WHERE order_date >= %s ORDER BY order_date, order_id"
        )
        line_sql = (
            f"SELECT {', '.join(LINE_COLUMNS)} FROM order_export_order_lines"
            " WHERE order_id = ANY(%s) ORDER BY order_id, line_no"
        )
        with conn.cursor(name="orders") as cursor, conn.cursor() as line_cursor:
            cursor.itersize = CHUNK
            cursor.execute(order_sql, (window_start(),))
            while rows := cursor.fetchmany(CHUNK):
                orders += len(rows)
                line_cursor.execute(line_sql, ([row[0] for row in rows],))
                lines += len(line_cursor.fetchall())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu, "orders": orders, "lines": lines,
            "rss_mb": peak_rss_mb()}  # fmt: skip


async def child_source(url: str, collector: str) -> dict[str, float]:
    from order_export_tui.sources.sql.settings import SqlSettings
    from order_export_tui.sources.sql.source import SqlSource

    source = SqlSource.from_section(SqlSettings(url=url, password_env=""), Path("/"), {})
    source.engine()  # its dialect imported before the clock, as psycopg is for the bare read
    settle(collector)
    cpu = cpu_seconds()
    started = time.perf_counter()
    orders = lines = 0
    async for chunk in source.iter_orders(window_start()):
        orders += len(chunk)
        lines += sum(len(doc["lines"]) for doc in chunk)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    await source.close()
    return {"seconds": seconds, "cpu": cpu, "orders": orders, "lines": lines,
            "rss_mb": peak_rss_mb()}  # fmt: skip


async def child_json(url: str, collector: str, check: str) -> dict[str, float]:
    from benchmarks import sql_json_probe
    from order_export_tui.sources.sql.settings import SqlSettings, engine_url

    address = engine_url(SqlSettings(url=url, password_env=""), Path("/"))
    conninfo = {
        "host": address.host,
        "port": address.port,
        "user": address.username,
        "dbname": address.database,
    }
    settle(collector)
    cpu = cpu_seconds()
    figures = sql_json_probe.read(conninfo, window_start(), CHUNK)
    figures["cpu"] = cpu_seconds() - cpu
    figures["rss_mb"] = peak_rss_mb()
    if check == "check":
        figures["identical"] = await same_documents(
            url, sql_json_probe.chunks(conninfo, window_start(), CHUNK)
        )
    return figures


async def same_documents(url: str, probed: Iterator[list[Any]]) -> float:
    """1.0 when the probe gives the source's documents, serialised byte for byte, in order
    (however each hands them over)."""
    import orjson

    from order_export_tui.sources.sql.settings import SqlSettings
    from order_export_tui.sources.sql.source import SqlSource

    theirs = itertools.chain.from_iterable(probed)
    source = SqlSource.from_section(SqlSettings(url=url, password_env=""), Path("/"), {})
    try:
        async for chunk in source.iter_orders(window_start()):
            for doc in chunk:
                other = next(theirs, None)
                if other is None or orjson.dumps(doc) != orjson.dumps(other):
                    return 0.0
        return 0.0 if next(theirs, None) is not None else 1.0
    finally:
        await source.close()


async def child_run(url: str, folder: str) -> dict[str, float]:
    import tomli_w

    from order_export_tui.engine.runner import ExportEngine
    from order_export_tui.service.wiring import build_destination, build_source
    from order_export_tui.settings import load_settings
    from order_export_tui.state import StateStore

    path = Path(folder) / "settings.toml"
    settings_table = {
        "task": {"run_on_schedule": False, "run_interval_minutes": 0, "batch_size": 1000,
                 "max_days_to_export": 30, "max_items_to_skip": 1000},
        "erp": {"source": "sql", "sql": {"url": url, "password_env": ""}},
        "destination": {"app": "file"},
        "file": {"path": "orders.jsonl"},
        "storage": {"state_database": "state.sqlite", "logs_dir": "logs"},
    }  # fmt: skip
    path.write_bytes(tomli_w.dumps(settings_table).encode())
    settings = load_settings(path)
    settle("settled")
    state = StateStore(settings.state_database_path)
    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=build_destination
    )
    started = time.perf_counter()
    report = await engine.run("benchmark")
    seconds = time.perf_counter() - started
    state.close()
    assert report.outcome == "succeeded", report.error
    return {"seconds": seconds, "orders": report.counts["read"], "rss_mb": peak_rss_mb()}


def in_child(*args: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---- the report ---------------------------------------------------------------------------


def measure(
    server: Any, orders: int, repeat: int, run: bool, collector: str, json_probe: bool
) -> None:
    database = server.create_database("bench")
    url = server.url(database)
    try:
        loaded = load(lambda: server.connect(database), orders)
        bares, reads, probes = [], [], []
        for _ in range(repeat):  # taken in turns: a machine whose load changes favours neither
            bares.append(in_child("bare", url, collector))
            reads.append(in_child("source", url, collector))
            if json_probe:  # its documents compared with the source's once, untimed
                check = "check" if not probes else "no-check"
                probes.append(in_child("json", url, collector, check))
        bare = min(bares, key=lambda f: f["seconds"])
        read = min(reads, key=lambda f: f["seconds"])
        assert read["orders"] == bare["orders"] == orders, (read, bare)
        assert read["lines"] == bare["lines"] == orders * LINES_PER_ORDER
        probe = min(probes, key=lambda f: f["seconds"]) if probes else None
        if probe is not None:
            assert probe["orders"] == orders and probe["lines"] == orders * LINES_PER_ORDER
            assert probes[0]["identical"] == 1.0, "the probe's documents differ"
        exported = None
        if run:
            with tempfile.TemporaryDirectory(prefix="order-export-bench-") as folder:
                exported = in_child("run", url, folder)
    finally:
        server.drop_database(database)

    def rate(figures: dict[str, float]) -> float:
        return figures["orders"] / figures["seconds"]

    print(
        f"\n{orders:,} orders, {LINES_PER_ORDER} lines each (COPY load {loaded:.1f}s),"
        f" collector {collector} in both reads"
    )
    print(
        f"  bare psycopg read  {rate(bare):>9,.0f} orders/s  peak RSS {bare['rss_mb']:6.1f} MB"
        f"  client CPU {bare['cpu']:5.2f}s"
    )
    print(
        f"  SqlSource read     {rate(read):>9,.0f} orders/s  peak RSS {read['rss_mb']:6.1f} MB"
        f"  client CPU {read['cpu']:5.2f}s  ({rate(read) / rate(bare):.2f}x the bare read,"
        f" {bare['cpu'] / read['cpu']:.2f}x its CPU)"
    )
    if probe is not None:
        print(
            f"  JSON probe read    {rate(probe):>9,.0f} orders/s"
            f"  peak RSS {probe['rss_mb']:6.1f} MB"
            f"  client CPU {probe['cpu']:5.2f}s  ({rate(probe) / rate(bare):.2f}x the bare read,"
            f" {bare['cpu'] / probe['cpu']:.2f}x its CPU; documents identical to the source's)"
        )
    if exported is not None:
        print(
            f"  run to file        {rate(exported):>9,.0f} orders/s"
            f"  peak RSS {exported['rss_mb']:6.1f} MB  ({exported['seconds']:.1f}s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=2, help="reads of each kind; best kept")
    parser.add_argument("--no-run", action="store_true", help="skip the whole export run")
    parser.add_argument(
        "--collector",
        choices=["settled", "default"],
        default="settled",
        help="garbage-collector policy of both reads: settled (as the commands set it) or"
        " CPython's default",
    )
    parser.add_argument(
        "--json-probe",
        action="store_true",
        help="also read through benchmarks/sql_json_probe.py (documents written by the server)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "bare":
            figures = child_bare(rest[0], rest[1])
        elif kind == "source":
            figures = asyncio.run(child_source(rest[0], rest[1]))
        elif kind == "json":
            figures = asyncio.run(child_json(rest[0], rest[1], rest[2]))
        else:
            figures = asyncio.run(child_run(rest[0], rest[1]))
        print(json.dumps(figures))
        return

    from tests.support.postgres import start_postgres

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    server = start_postgres()
    try:
        for orders in args.orders:
            measure(server, orders, args.repeat, not args.no_run, args.collector, args.json_probe)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
