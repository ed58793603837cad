"""The dashboard counts the orders a run sent as cancelled (interfaces.md §7): the counters
panel, the run's notice and the run history."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from order_export_tui.orders import order_problem
from order_export_tui.sources.demo import DemoErpSource, cancel_order
from order_export_tui.sources.demo.connector import demo_database_path
from tests.tui.conftest import finish_run, region_text, wait_until

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def unshipped_order(path: Path) -> str:
    source = DemoErpSource(path)
    try:
        docs = [doc async for chunk in source.iter_orders(EPOCH) for doc in chunk]
    finally:
        await source.close()
    return next(
        str(doc["order_id"])
        for doc in reversed(docs)
        if order_problem(doc) is None and doc["shipping_status"] == "not_shipped"
    )


async def test_the_counters_the_notice_and_the_history_show_orders_sent_as_cancelled(
    make_app: Any,
) -> None:
    app = make_app(orders=200, malformed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        path = demo_database_path(app.control.service.engine.settings)
        cancel_order(path, await unshipped_order(path))

        await pilot.press("r")
        await finish_run(pilot, app)

        assert re.search(r"\bcancelled\s+1\b", region_text(app, "#counters"))
        await wait_until(
            pilot,
            lambda: any("1 cancelled" in str(n.message) for n in app._notifications),
        )
        (latest, *_) = await app.control.recent_runs()
        assert latest.counts["cancelled"] == 1
