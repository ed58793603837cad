"""What an operator's first day found on the dashboard (issue 25 item 10): the run history's
first columns at 80 columns, "nothing sent" for an unchanged run, on/off under NO_COLOR, the
seconds before the next run."""

from __future__ import annotations

from datetime import datetime, timedelta

from textual.widgets import Switch

from order_export_tui.tui.formatting import next_run_time
from order_export_tui.tui.full_lines_screen import FullLinesScreen
from order_export_tui.tui.history_table import RunHistoryTable
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.settings_screen import SettingsScreen
from tests.tui.conftest import finish_run, screen_text, wait_until


def flat(app) -> str:  # type: ignore[no-untyped-def]
    return " ".join(screen_text(app).split())


async def test_at_80_columns_the_history_starts_with_when_outcome_and_skipped(make_app) -> None:
    app = make_app(orders=20, malformed=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        table = app.query_one(RunHistoryTable)
        labels = [str(column.label) for column in table.ordered_columns]
        assert labels[:3] == ["when", "outcome", "skipped"]
        header = next(line for line in screen_text(app).splitlines() if " outcome " in line)
        assert header.split("│")[1].split()[:3] == ["when", "outcome", "skipped"]
        assert str(table.get_cell("1", "skipped")) == "2"


async def test_a_run_with_every_order_unchanged_says_nothing_sent(make_app) -> None:
    app = make_app(orders=120, malformed=0, task={"batch_size": 50})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        assert "batch 3 of 3, 120 of 120 orders" in flat(app)
        await pilot.press("r")
        await wait_until(pilot, lambda: app.progress.run_id == 2)
        await finish_run(pilot, app)
        report = app.control.service.engine.last_report
        assert report is not None and report.counts["unchanged"] == 120
        await wait_until(pilot, lambda: "nothing sent, 120 of 120 orders" in flat(app))
        assert "batch 3 of 3" not in flat(app)


async def test_switches_say_on_or_off_without_colour(make_app, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(
        orders=10, malformed=0, task={"run_on_schedule": True, "run_interval_minutes": 60}
    )
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.no_color
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        switch = screen.field("task.run_on_schedule").editor
        assert isinstance(switch, Switch) and switch.value
        assert str(switch.render()) == "[on ]"
        switch.value = False
        await pilot.pause()
        assert str(switch.render()) == "[off]"


def test_the_next_run_shows_its_seconds_within_a_minute() -> None:
    now = datetime(2026, 12, 6, 10, 14, 18).astimezone()
    soon = now + timedelta(seconds=42)
    assert next_run_time(soon, now) == f"in 42 s, {soon.strftime('%H:%M:%S')}"
    assert next_run_time(now + timedelta(seconds=0.2), now).startswith("in 1 s, ")
    later = now + timedelta(minutes=5)
    assert next_run_time(later, now) == later.strftime("%Y-%m-%d %H:%M")
    assert next_run_time(later, None) == later.strftime("%Y-%m-%d %H:%M")


async def test_a_terminal_too_small_says_so_and_what_it_needs(make_app) -> None:
    app = make_app(orders=10, malformed=0)
    async with app.run_test(size=(60, 20)) as pilot:
        await wait_until(pilot, lambda: "Terminal too small" in flat(app))
        assert "Terminal too small (60x20): need at least 80x24" in flat(app)
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: "Terminal too small" not in flat(app))
        await pilot.resize_terminal(100, 22)
        await wait_until(pilot, lambda: "(100x22): need at least 80x24" in flat(app))


async def test_a_log_line_wider_than_80_columns_can_be_read_in_full(make_app) -> None:
    app = make_app(orders=40, malformed=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, LogsScreen))
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        view = logs.view
        await wait_until(pilot, lambda: not view.scanning and view.index.line_count > 0)
        await wait_until(pilot, lambda: "long lines in full" in flat(app))
        await pilot.press("slash", *"invalid order", "enter")
        await wait_until(pilot, lambda: view.match_line is not None)
        assert view.match_line is not None
        line = view.line_text(view.match_line)
        assert len(line) > 80 and line not in flat(app)  # cut at the view's edge
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, FullLinesScreen))
        words = " ".join(line.split())
        await wait_until(pilot, lambda: words in " ".join(flat(app).replace("│", " ").split()))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is logs)
