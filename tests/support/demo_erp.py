"""The demo ERP as the tests fill it, and what it holds in the export window."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from order_export_tui.engine.runner import window_start
from order_export_tui.orders import order_problem
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path

NOW = datetime(2025, 3, 14, 15, 30, 12, tzinfo=UTC)  # in the past: ship_order stamps real time
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAYS = 12
ORDERS = 240
MALFORMED = 5


def generate(path: Path, **overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "orders": ORDERS, "seed": 11, "days": DAYS, "malformed": MALFORMED, "now": NOW,
    }  # fmt: skip
    generate_demo_erp(path, **(arguments | overrides))


async def read_all(
    path: Path, window_start: datetime = EPOCH, chunk_size: int = 1000
) -> list[dict[str, Any]]:
    source = DemoErpSource(path, chunk_size=chunk_size)
    try:
        return [doc async for chunk in source.iter_orders(window_start) for doc in chunk]
    finally:
        await source.close()


def demo(settings: Settings, orders: int = 230, malformed: int = 3, days: int = 30) -> None:
    generate_demo_erp(
        demo_database_path(settings), orders=orders, seed=11, days=days, malformed=malformed
    )


async def expected_orders(settings: Settings) -> tuple[set[str], set[str]]:
    """(valid, malformed) order ids in the export window, read straight from the demo ERP."""
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    source = DemoErpSource(demo_database_path(settings))
    valid: set[str] = set()
    malformed: set[str] = set()
    async for chunk in source.iter_orders(start):
        for doc in chunk:
            (malformed if order_problem(doc) else valid).add(doc["order_id"])
    await source.close()
    return valid, malformed


def move_order(path: Path, order_no: str, email: str) -> None:
    """Give an order of the demo ERP another customer e-mail, as an ERP user would."""
    with sqlite3.connect(path) as db:
        changed = db.execute(
            "UPDATE sales_header SET sell_to_email = ?, modified_at = ? WHERE order_no = ?",
            (email, datetime.now(UTC).isoformat(), order_no),
        ).rowcount
    db.close()
    assert changed == 1, f"no order {order_no}"
