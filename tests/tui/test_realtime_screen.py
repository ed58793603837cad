"""The real-time screen (issue 17 item 8): the recent webhook events, when each came, for
which order, of which kind, what became of it and why; filterable, moved in like every list."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from order_export_tui.service.control_client import AttachedControl
from order_export_tui.settings import load_settings
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.tui import OrderExportApp, remote_settings
from order_export_tui.tui.realtime_screen import RealtimeScreen
from order_export_tui.tui.realtime_table import RealtimeEventsTable
from order_export_tui.tui.table_filter import TableFilter
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, order_export
from tests.support.ports import free_port
from tests.support.realtime_dashboard import (
    UNKNOWN_ORDER,
    RealtimeDashboard,
    post_one_of_each,
    realtime_dashboard,
)
from tests.support.webstore import SECRET, Webstore, payment
from tests.tui.conftest import screen_text, wait_until


@pytest.fixture
def dashboard(make_settings, state_factory, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ORDER_EXPORT_WEBHOOK_SECRET", SECRET)
    settings = make_settings(webhook={"enabled": True, "listen": f"127.0.0.1:{free_port()}"})
    from order_export_tui.sources.demo import generate_demo_erp

    generate_demo_erp(demo_database_path(settings), orders=5, seed=2, days=5, malformed=0)
    built = realtime_dashboard(settings, state_factory(settings))
    yield built
    built.close()


def rows(table: RealtimeEventsTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def six_events_on_screen(
    pilot: Pilot[Any], dashboard: RealtimeDashboard
) -> tuple[RealtimeEventsTable, list[str]]:
    """One event of each kind posted, and the real-time screen open (e) showing them all;
    the orders delivered, refused and failing."""
    orders = await post_one_of_each(dashboard)
    await pilot.press("e")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, RealtimeScreen))
    table = pilot.app.screen.query_one(RealtimeEventsTable)
    await wait_until(pilot, lambda: table.row_count == 6, what="six events")
    return table, orders


async def test_each_event_shows_when_which_order_which_kind_what_became_of_it_and_why(
    dashboard: RealtimeDashboard,
) -> None:
    app = dashboard.app
    async with app.run_test(size=(120, 40)) as pilot:
        table, (delivered, refused, failing) = await six_events_on_screen(pilot, dashboard)
        shown = [row[1:] for row in rows(table)]  # newest first; the time aside
        assert shown[0][:3] == [failing, "completed", "… waiting"]
        assert "1 attempt failed, trying again: " in shown[0][3]
        assert "503 Service Unavailable" in shown[0][3]
        assert shown[1][:3] == [UNKNOWN_ORDER, "payment", "‖ held"]
        assert "order not known yet" in shown[1][3]
        assert shown[2][:3] == [delivered, "payment", "↷ superseded"]
        assert "older than the payment status already applied" in shown[2][3]
        assert shown[3][:3] == [delivered, "payment", "✓ delivered"]
        assert shown[4][:3] == [refused, "completed", "✗ skipped"]
        assert "the contact is suppressed" in shown[4][3]
        assert shown[5][:3] == [delivered, "completed", "✓ delivered"]
        assert all(re.fullmatch(r"\d\d-\d\d \d\d:\d\d:\d\d", row[0]) for row in rows(table))
        listen = dashboard.settings.webhook.listen
        counts = "1 waiting · 1 held · 2 delivered · 1 skipped"
        await wait_until(pilot, lambda: f"Listening on {listen} · {counts}" in screen_text(app))


async def test_the_filter_keeps_the_events_that_match_and_esc_brings_all_back(
    dashboard: RealtimeDashboard,
) -> None:
    app = dashboard.app
    async with app.run_test(size=(120, 40)) as pilot:
        table, (delivered, _, _) = await six_events_on_screen(pilot, dashboard)

        await pilot.press("slash", *"held")
        await wait_until(pilot, lambda: table.row_count == 1)
        assert rows(table)[0][1] == UNKNOWN_ORDER
        await pilot.press("enter")  # keeps the filter, back in the table
        assert app.screen.focused is table
        assert "/held: 1 of 6 events" in str(table.border_subtitle)

        await pilot.press("escape")  # the first Esc clears the filter...
        await wait_until(pilot, lambda: table.row_count == 6)
        await pilot.press("slash", *delivered)
        await wait_until(pilot, lambda: table.row_count == 3)  # the order and two payments
        await pilot.press("escape")  # Esc in the filter line clears it too
        await wait_until(pilot, lambda: table.row_count == 6)
        assert not app.screen.query_one(TableFilter).display

        await pilot.press("escape")  # ...and the next one goes back to the dashboard
        await wait_until(pilot, lambda: not isinstance(app.screen, RealtimeScreen))


async def test_j_k_g_and_G_move_in_the_events_and_new_events_keep_the_operators_row(
    dashboard: RealtimeDashboard,
) -> None:
    app = dashboard.app
    async with app.run_test(size=(120, 40)) as pilot:
        table, _ = await six_events_on_screen(pilot, dashboard)
        assert table.cursor_row == 0
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == 5
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("j")
        detail = app.screen.query_one("#realtime-detail", Static)
        assert str(detail.render()).startswith(f"{UNKNOWN_ORDER} payment, received ")
        assert str(detail.render()).endswith(
            "held: order not known yet: applied when it is exported"
        )
        chosen = table.selected_key
        await pilot.pause(1.5)  # a refresh or two: the operator's row stays the one chosen
        assert table.selected_key == chosen


async def test_with_the_webhook_off_the_screen_says_so_and_how_to_turn_it_on(
    make_app,  # type: ignore[no-untyped-def]
) -> None:
    app = make_app(orders=1, malformed=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, RealtimeScreen))
        await wait_until(
            pilot, lambda: "webhook.enabled = false" in " ".join(screen_text(app).split())
        )
        assert app.screen.query_one(RealtimeEventsTable).row_count == 0


async def test_attached_to_a_daemon_the_screen_shows_the_daemons_events(
    tmp_path, daemons, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    write_settings(tmp_path, {"webhook": {"enabled": True, "listen": f"127.0.0.1:{port}"}})
    made = order_export("demo", "--orders", "5", "--malformed", "0", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    daemon = DaemonProcess(tmp_path, env={"ORDER_EXPORT_WEBHOOK_SECRET": SECRET})
    daemons.append(daemon)
    daemon.wait_started()
    daemon.wait_for(lambda text: f"127.0.0.1:{port}" in text)
    settings = load_settings(tmp_path / "settings.toml")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        answer = await Webstore(client).payment_status(payment(UNKNOWN_ORDER, "paid"))
    assert answer.status_code == 202

    path = settings.control_socket_path
    app = OrderExportApp(await remote_settings(path), control=AttachedControl(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.attached and app.status is not None)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, RealtimeScreen))
        table = app.screen.query_one(RealtimeEventsTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the daemon's event")
        assert [str(cell) for cell in table.get_row_at(0)][1:4] == [
            UNKNOWN_ORDER,
            "payment",
            "‖ held",
        ]
        await wait_until(pilot, lambda: f"Listening on 127.0.0.1:{port}" in screen_text(app))
    assert daemon.stop() == 0
