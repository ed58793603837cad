"""The demo ERP as the tests fill it, and what it holds in the export window."""

from __future__ import annotations

from datetime import datetime

from order_export_tui.engine.runner import window_start
from order_export_tui.orders import order_problem
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp


def demo(settings: Settings, orders: int = 230, malformed: int = 3, days: int = 30) -> None:
    generate_demo_erp(
        settings.demo_database_path, orders=orders, seed=11, days=days, malformed=malformed
    )


async def expected_orders(settings: Settings) -> tuple[set[str], set[str]]:
    """(valid, malformed) order ids in the export window, read straight from the demo ERP."""
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    source = DemoErpSource(settings.demo_database_path)
    valid: set[str] = set()
    malformed: set[str] = set()
    async for chunk in source.iter_orders(start):
        for doc in chunk:
            (malformed if order_problem(doc) else valid).add(doc["order_id"])
    await source.close()
    return valid, malformed
