"""SVG snapshots of the main screens at 80x24 and 120x40 (pytest-textual-snapshot).

Deterministic: a fixed wall clock (the schedule and the engine), a fixed monotonic clock for
rates, a fixed demo seed, TZ=UTC, paths shown relative to the settings file, the cursor not
blinking. Refresh after an intended change with `pytest tests/tui --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from order_export_tui.settings import load_settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.tui import OrderExportApp
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.settings_screen import SettingsScreen
from tests.conftest import write_settings
from tests.support.wall_clock import FakeWallClock
from tests.tui.conftest import Gate, build_app, wait_until
from tests.tui.test_outcomes import RefusingDestination

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


class FixedMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scene:
    def __init__(self, app: OrderExportApp, gate: Gate, monotonic: FixedMonotonic) -> None:
        self.app = app
        self.gate = gate
        self.monotonic = monotonic


@pytest.fixture
def scene(tmp_path, monkeypatch, restore_tz, state_factory) -> Callable[[int], Scene]:
    restore_tz("UTC")
    wall = FakeWallClock(datetime(2026, 11, 27, 9, 0)).install(monkeypatch)

    def make(free_batches: int, destination_factory: Any = None) -> Scene:
        path = write_settings(
            tmp_path,
            {
                "task": {"run_on_schedule": True, "run_interval_minutes": 60},
                "webstore": {"name": "Demo webstore"},
            },
        )
        settings = load_settings(path)
        generate_demo_erp(
            settings.demo_database_path, orders=500, seed=1, days=10, malformed=3, now=wall.aware()
        )
        gate = Gate(free_batches)
        monotonic = FixedMonotonic()
        app = build_app(
            settings,
            state_factory(settings),
            destination_factory=destination_factory or gate.factory,
            clock=wall.aware,
            monotonic=monotonic,
        )
        return Scene(app, gate, monotonic)

    return make


async def run_to_the_end(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, OrderExportApp)
    app.control.service.request_run("manual")
    await app.control.service.wait_for_run()
    await wait_until(pilot, lambda: not app.progress.active and app.progress.run_id == 1)
    app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_idle(snap_compare, scene, size) -> None:
    assert snap_compare(scene(1000).app, terminal_size=size, run_before=run_to_the_end)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_after_a_failed_run(snap_compare, scene, size) -> None:
    failing = scene(0, RefusingDestination)
    assert snap_compare(failing.app, terminal_size=size, run_before=run_to_the_end)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_mid_run(snap_compare, scene, size) -> None:
    mid = scene(3)

    async def stop_in_batch_four(pilot: Pilot[Any]) -> None:
        app = mid.app
        app.control.service.request_run("manual")
        await wait_until(pilot, lambda: mid.gate.waiting and app.progress.processed == 150)
        mid.monotonic.now += 2.0  # two seconds into the run: 75 orders/s, ETA 0:05
        await pilot.pause(1.2)  # the once-a-second refresh shows the new rate

    assert snap_compare(mid.app, terminal_size=size, run_before=stop_in_batch_four)


@pytest.mark.parametrize("size", SIZES)
def test_settings_form_with_a_validation_error(snap_compare, scene, size) -> None:
    async def type_a_bad_batch_size(pilot: Pilot[Any]) -> None:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))
        screen = pilot.app.screen
        assert isinstance(screen, SettingsScreen)
        for editor in screen.query(Input):
            editor.cursor_blink = False
        editor = screen.field("task.batch_size").editor
        assert isinstance(editor, Input)
        editor.focus()
        editor.value = ""
        await pilot.press("0")
        await pilot.pause()

    assert snap_compare(scene(1000).app, terminal_size=size, run_before=type_a_bad_batch_size)


@pytest.mark.parametrize("size", SIZES)
def test_log_browser_with_a_search(snap_compare, scene, size) -> None:
    async def search_the_log(pilot: Pilot[Any]) -> None:
        await run_to_the_end(pilot)
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, LogsScreen))
        screen = pilot.app.screen
        assert isinstance(screen, LogsScreen)
        await wait_until(pilot, lambda: screen.view.index.line_count > 0)
        await pilot.press("slash", *"skipped", "enter")
        await wait_until(pilot, lambda: screen.view.match_line is not None)
        screen.query_one("#log-search", Input).cursor_blink = False

    assert snap_compare(scene(1000).app, terminal_size=size, run_before=search_the_log)
