"""The dashboard driven by its keys, over the real engine and the demo ERP."""

from __future__ import annotations

import json
import re

from textual.widgets import ProgressBar

from order_export_tui.destinations.file.connector import file_path
from order_export_tui.engine.events import CANCELLED, SUCCEEDED
from order_export_tui.tui.confirm_screen import ConfirmScreen
from order_export_tui.tui.help_screen import HelpScreen
from order_export_tui.tui.history_table import RunHistoryTable
from order_export_tui.tui.skipped_table import SkippedOrdersTable
from tests.support.loopback_destination import LoopbackDestination
from tests.tui.conftest import exported_figure, finish_run, gated, screen_text, wait_until


def exported_lines(app) -> int:  # type: ignore[no-untyped-def]
    """Orders the file destination wrote (each line is one bulk import of a batch)."""
    path = file_path(app.settings)
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    return sum(len(json.loads(line)["body"]["records"]) for line in lines)


async def test_r_runs_an_export_and_the_panels_end_at_the_run_s_final_values(make_app) -> None:
    app = make_app(orders=2000, malformed=3)
    async with app.run_test(size=(120, 40)) as pilot:
        assert "press r to run an export now" in screen_text(app)
        await pilot.press("r")
        await finish_run(pilot, app)

        report = app.control.service.engine.last_report
        assert report is not None and report.outcome == SUCCEEDED
        assert report.counts == {
            "read": 2000,
            "new": 1997,
            "updated": 0,
            "unchanged": 0,
            "retried": 0,
            "skipped": 3,
            "cancelled": 0,
        }
        text = screen_text(app)
        assert "batch 40 of 40, 2,000 of 2,000 orders" in text
        assert app.query_one("#run-bar", ProgressBar).percentage == 1.0
        for name, value in [("read", "2,000"), ("new", "1,997"), ("unchanged", "0")]:
            assert re.search(rf"\b{name}\s+{value}\b", text), name
        assert re.search(r"\bskipped\s+3 / 10\b", text)
        assert "idle; run 1 ✓ succeeded" in text
        assert exported_figure(app) == "1,997 orders of the last 30 days confirmed"
        # The history and the skipped orders come from the state database.
        # when, outcome, skipped, new, updated, unchanged, retried, read, cancelled, duration;
        # trigger and run scroll in from the right
        history_row = r"\S+ \S+\s+✓ succeeded\s+3\s+1,997\s+0\s+0\s+0\s+2,000\s+0\s+0:0\d"
        assert re.search(history_row, text)
        history = app.query_one(RunHistoryTable)
        assert (history.get_cell("1", "trigger"), history.get_cell("1", "run")) == ("manual", "1")
        skipped = app.query_one(SkippedOrdersTable)
        assert skipped.row_count == 3
        assert {order.order_id for order in app.control.state.skipped_orders()} == {
            str(skipped.get_row_at(row)[0]) for row in range(3)
        }
        # Batched: far fewer screen updates than the 80 batch events of the run.
        assert app.feed.posted <= 4 + report.duration_seconds / 0.1 + 2


async def test_progress_moves_while_the_run_is_in_flight(make_app) -> None:
    gate = gated(free_batches=3)
    app = make_app(orders=500, malformed=0, destination_factory=gate.factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: gate.waiting and app.progress.processed == 150)
        text = screen_text(app)
        assert "batch 4 of 10, 150 of 500 orders" in text
        assert "running (run 1, manual)" in text
        assert app.query_one("#run-bar", ProgressBar).percentage == 0.3
        assert re.search(r"\bnew\s+150\b", text)
        history_row = r"\S+ \S+\s+▶ running\s+0\s+150\s+0\s+0\s+0\s+150\s+0\s+\S+"
        await wait_until(pilot, lambda: re.search(history_row, screen_text(app)) is not None)
        history = app.query_one(RunHistoryTable)
        assert (history.get_cell("1", "trigger"), history.get_cell("1", "run")) == ("manual", "1")
        gate.open()
        await finish_run(pilot, app)
        assert "batch 10 of 10, 500 of 500 orders" in screen_text(app)


async def test_c_cancels_the_run_at_a_batch_boundary_and_state_stays_consistent(
    make_app,
) -> None:
    gate = gated(free_batches=2)
    app = make_app(orders=500, malformed=0, destination_factory=gate.factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: gate.waiting)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keeps running
        assert app.control.service.run_in_progress and app.progress.state == "running"
        await pilot.press("c", "y")
        await wait_until(pilot, lambda: app.progress.state == "cancelling")
        assert "cancelling" in screen_text(app)
        gate.open()
        await finish_run(pilot, app)

        report = app.control.service.engine.last_report
        assert report is not None and report.outcome == CANCELLED
        # The batch in flight was finished and recorded; nothing after it was sent.
        assert report.counts["read"] == 150 and report.counts["new"] == 150
        assert app.control.state.exported_count() == 150 == exported_lines(app)
        assert app.control.state.recent_runs(1)[0].outcome == CANCELLED
        assert "cancelled" in screen_text(app)

        await pilot.press("r")  # the next run sends exactly the rest
        await finish_run(pilot, app)
        assert app.control.service.engine.last_report.counts["new"] == 350  # type: ignore[union-attr]
        assert app.control.state.exported_count() == 500 == exported_lines(app)


async def test_r_while_a_run_is_in_flight_starts_nothing(make_app) -> None:
    gate = gated(free_batches=0)
    app = make_app(orders=100, malformed=0, destination_factory=gate.factory)
    async with app.run_test() as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: gate.waiting)
        await pilot.press("r")
        await pilot.pause()
        gate.open()
        await finish_run(pilot, app)
        assert len(app.control.state.recent_runs()) == 1


async def test_q_during_a_run_asks_then_stops_the_run_cleanly_and_exits(make_app) -> None:
    gate = gated(free_batches=1)
    app = make_app(orders=500, malformed=0, destination_factory=gate.factory)
    async with app.run_test() as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: gate.waiting)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: app.progress.state == "cancelling")
        assert app.return_code is None  # still finishing the batch in flight
        gate.open()
        await wait_until(pilot, lambda: app.return_code is not None, what="the app to exit")
    assert app.return_code == 0
    report = app.control.service.engine.last_report
    assert report is not None and report.outcome == CANCELLED
    assert report.counts["new"] == 100 == app.control.state.exported_count() == exported_lines(app)
    assert app.control.state.recent_runs(1)[0].outcome == CANCELLED
    assert not app.control.service.run_in_progress
    assert not app.control.service.request_run("manual")  # the scheduler stopped too


async def test_q_while_idle_quits_without_asking(make_app) -> None:
    app = make_app(orders=10, malformed=0)
    async with app.run_test() as pilot:
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0


async def test_the_skipped_orders_retry_keys_send_them_again(make_app, loopback) -> None:
    server, store = loopback
    app = make_app(
        orders=120,
        malformed=0,
        destination_factory=lambda settings: LoopbackDestination(server.url),
    )
    async with app.run_test(size=(120, 40)) as pilot:
        rejected = ["SO-100007", "SO-100042", "SO-100101"]
        for order_id in rejected:
            store.reject[order_id] = "unknown contact"
        await pilot.press("r")
        await finish_run(pilot, app)
        table = app.query_one(SkippedOrdersTable)
        assert table.row_count == 3
        assert {order.order_id for order in app.control.state.skipped_orders()} == set(rejected)

        store.reject.clear()
        await pilot.press("2")
        assert table.has_focus
        await pilot.press("down")
        chosen = table.selected_order_id
        assert chosen in rejected
        await pilot.press("t")
        await finish_run(pilot, app)
        assert app.control.service.engine.last_report.trigger == "retry"  # type: ignore[union-attr]
        assert store.writes[chosen] == 1  # type: ignore[index]
        assert table.row_count == 2 and chosen not in {
            o.order_id for o in app.control.state.skipped_orders()
        }

        await pilot.press("a")
        await finish_run(pilot, app)
        assert all(store.writes[order_id] == 1 for order_id in rejected)
        assert table.row_count == 0 and app.control.state.skipped_orders() == []
        assert "Skipped orders" in screen_text(app)


async def test_help_lists_every_key_and_the_palette_has_every_action(make_app) -> None:
    app = make_app(orders=10, malformed=0)
    async with app.run_test(size=(100, 70)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = screen_text(app)
        for key, what in [
            ("r", "Run"),
            ("c", "Cancel"),
            ("s", "Settings"),
            ("l", "Logs"),
            ("2", "Skipped"),
            ("1", "History"),
            ("q", "Quit"),
            ("/", "Search"),
        ]:
            assert re.search(rf"[│ ]{re.escape(key)}\s+{what}", help_text), key
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")

        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {
            "Run now",
            "Cancel the run",
            "Settings",
            "Logs",
            "Skipped orders",
            "Run history",
            "Help",
            "Quit",
            "Re-try all skipped orders",
        } <= titles
