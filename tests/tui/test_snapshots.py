"""SVG snapshots of the main screens at 80x24 and 120x40 (pytest-textual-snapshot).

Deterministic: a fixed wall clock (the schedule and the engine), a fixed monotonic clock for
rates, a fixed demo seed, TZ=UTC, paths shown relative to the settings file, the cursor not
blinking. Refresh after an intended change with `pytest tests/tui --snapshot-update`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from order_export_tui.service.control_client import AttachedControl
from order_export_tui.settings import Settings, load_settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.tui import OrderExportApp
from order_export_tui.tui.history_table import RunHistoryTable
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.realtime_screen import RealtimeScreen
from order_export_tui.tui.realtime_table import RealtimeEventsTable
from order_export_tui.tui.settings_screen import SettingsScreen
from order_export_tui.tui.skipped_table import SkippedOrdersTable
from tests.conftest import write_settings
from tests.support.realtime_dashboard import post_one_of_each, realtime_dashboard
from tests.support.scripted_destinations import RefusingDestination
from tests.support.service_thread import ServiceThread, run_once
from tests.support.wall_clock import FakeWallClock
from tests.support.webstore import SECRET
from tests.tui.conftest import Gate, build_app, screen_text, tables_loaded, wait_until

REALTIME_PORT = 38917
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
def wall(monkeypatch, restore_tz) -> FakeWallClock:
    restore_tz("UTC")
    return FakeWallClock(datetime(2026, 11, 27, 9, 0)).install(monkeypatch)


def demo_webstore(tmp_path: Path, wall: FakeWallClock, **overrides: Any) -> Settings:
    path = write_settings(
        tmp_path,
        {
            "task": {"run_on_schedule": True, "run_interval_minutes": 60},
            "webstore": {"name": "Demo webstore"},
            **overrides,
        },
    )
    settings = load_settings(path)
    generate_demo_erp(
        demo_database_path(settings), orders=500, seed=1, days=10, malformed=3, now=wall.aware()
    )
    return settings


@pytest.fixture
def scene(tmp_path, wall, state_factory) -> Callable[[int], Scene]:

    def make(free_batches: int, destination_factory: Any = None) -> Scene:
        settings = demo_webstore(tmp_path, wall)
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
    await tables_loaded(pilot, app)
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
        # the once-a-second refresh shows the new rate (a loaded machine may take longer)
        await wait_until(
            pilot, lambda: "elapsed 0:02" in screen_text(app), what="the refreshed rate"
        )
        await tables_loaded(pilot, app)

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


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_attached_to_a_daemon(snap_compare, tmp_path, wall, size) -> None:
    settings = demo_webstore(tmp_path, wall)
    daemon = ServiceThread(settings, clock=wall.aware, pid=4242, since="2026-11-27T08:00:00+00:00")
    daemon.start()
    try:
        daemon.call(run_once)
        app = OrderExportApp(
            settings,
            control=AttachedControl(settings.control_socket_path),
            clock=wall.aware,
            monotonic=FixedMonotonic(),
        )

        async def attached_and_settled(pilot: Pilot[Any]) -> None:
            attached = "attached to order-export daemon, pid 4242"
            await wait_until(pilot, lambda: app.process_text().startswith(attached))
            history = app.dashboard.query_one(RunHistoryTable)
            skipped = app.dashboard.query_one(SkippedOrdersTable)
            await wait_until(pilot, lambda: history.row_count == 1 and skipped.row_count == 3)
            app.clear_notifications()
            # The tables size their columns to the rows on the next refresh: let it happen.
            await pilot.pause(0.2)

        assert snap_compare(app, terminal_size=size, run_before=attached_and_settled)
    finally:
        daemon.stop()


@pytest.mark.parametrize("size", SIZES)
def test_real_time_screen(snap_compare, tmp_path, wall, state_factory, monkeypatch, size) -> None:
    # The address is on the screen: a fixed port, so that the picture is the same each time.
    if not port_is_free(REALTIME_PORT):
        pytest.skip(f"port {REALTIME_PORT} is busy: the snapshot shows the intake's address")
    monkeypatch.setenv("ORDER_EXPORT_WEBHOOK_SECRET", SECRET)
    settings = demo_webstore(
        tmp_path, wall, webhook={"enabled": True, "listen": f"127.0.0.1:{REALTIME_PORT}"}
    )
    dashboard = realtime_dashboard(
        settings, state_factory(settings), clock=wall.aware, monotonic=FixedMonotonic()
    )
    app = dashboard.app

    async def one_event_of_each_kind(pilot: Pilot[Any]) -> None:
        await post_one_of_each(dashboard)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, RealtimeScreen))
        table = app.screen.query_one(RealtimeEventsTable)
        await wait_until(pilot, lambda: table.row_count == 6)
        await wait_until(pilot, lambda: "1 waiting · 1 held" in flat(app))
        app.clear_notifications()
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=size, run_before=one_event_of_each_kind)
    finally:
        dashboard.close()


def flat(app: OrderExportApp) -> str:
    return " ".join(screen_text(app).split())


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
