"""d on a run in the history: its counts, error and skipped orders, and its log one key away
(issue 17 item 10)."""

from __future__ import annotations

from pathlib import Path

from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.run_detail_screen import RunDetailScreen
from order_export_tui.tui.skipped_table import SkippedOrdersTable
from tests.support.scripted_destinations import RefusingDestination
from tests.tui.conftest import finish_run, screen_text, wait_until


async def test_d_shows_the_run_s_counts_and_skipped_orders_and_l_opens_its_log(make_app) -> None:
    app = make_app(orders=40, malformed=3)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        await pilot.press("1", "d")
        await wait_until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        text = " ".join(screen_text(app).split())
        assert "Run 1" in text and "✓ succeeded" in text
        assert "read 40, new 37, updated 0, unchanged 0, retried 0, skipped 3" in text
        skipped = app.screen.query_one(SkippedOrdersTable)
        assert set(skipped.shown_keys) == {o.order_id for o in app.control.state.skipped_orders()}
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, LogsScreen))
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        await wait_until(pilot, lambda: screen.view.path is not None)
        assert screen.view.path == Path(app.control.state.recent_runs(1)[0].log_file or "")


async def test_d_on_a_failed_run_shows_its_error(make_app) -> None:
    app = make_app(orders=20, malformed=0, destination_factory=RefusingDestination)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        await pilot.press("1", "d")
        await wait_until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        text = " ".join(screen_text(app).split())
        assert "✗ failed" in text and "the destination said no" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, RunDetailScreen)
