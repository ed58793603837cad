"""The status panel's Exported figure (issue 17, item 7): the export window's orders the
destination holds, moving as batches are recorded and as real-time deliveries land, not only
when a run ends."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.export_service import ExportService, RealtimeChannel
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import Settings, destination_identity, load_settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import ExportedOrder, StateStore
from order_export_tui.tui import OrderExportApp
from order_export_tui.tui.intake_status import OFF, IntakeStatus
from order_export_tui.tui.run_progress import RunProgress
from order_export_tui.tui.status_panel import COMPACT_WIDTH, StatusView, exported_text, rows_of
from tests.conftest import write_settings
from tests.support.orders import order
from tests.support.ports import free_port
from tests.support.webstore import SECRET, post_to_intake
from tests.tui.conftest import (
    DestinationFactory,
    exported_figure,
    finish_run,
    gated,
    hosted_control,
    screen_text,
    wait_until,
)


def figure(count: int) -> str:
    return f"{count:,} orders of the last 30 days confirmed"


def compact_figure(count: int) -> str:
    """The same on an 80-column terminal, on one line of the narrow status panel."""
    return f"{count:,} of the last 30 days"


def an_old_export(state: StateStore) -> None:
    """An order exported long ago, dated before the window: it does not count."""
    long_ago = datetime.now(UTC) - timedelta(days=90)
    state.record_batch(
        run_id=None,
        now=long_ago,
        exported=[
            ExportedOrder("SO-OLD", "h", "shipped", "paid", None, long_ago.isoformat()),
        ],
        skipped={},
        resolved=[],
    )


def dashboard(
    settings: Settings, state: StateStore, engine_destination: DestinationFactory
) -> tuple[OrderExportApp, StateStore | None]:
    """The dashboard hosting the service as `order-export tui` does: the engine sends to
    `engine_destination`; with `webhook.enabled`, the real-time channel delivers to the
    configured (file) destination. Returns the app and the intake's connection to close."""
    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=engine_destination
    )
    intake_state = None
    realtime = None
    if settings.webhook.enabled:
        intake_state = StateStore(settings.state_database_path, durable=True)
        realtime = RealtimeChannel(
            settings,
            state=state,
            intake_state=intake_state,
            destination_factory=build_destination,
            source_factory=build_source,
            secret=SECRET,
        )

    async def no_email(settings: Settings, report: Any) -> None:
        return None

    service = ExportService(settings, engine, realtime=realtime, notifier=no_email)
    return OrderExportApp(settings, control=hosted_control(service, state)), intake_state


async def test_the_exported_figure_moves_between_batches_of_a_run(
    make_settings, state_factory
) -> None:
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=300, seed=8, days=10, malformed=0)
    state = state_factory(settings)
    an_old_export(state)
    gate = gated(2)  # batches 1 and 2 go through, batch 3 waits
    app, _ = dashboard(settings, state, gate.factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(
            pilot, lambda: exported_figure(app) == compact_figure(0), what="0 exported"
        )
        await pilot.press("r")
        await wait_until(pilot, lambda: gate.waiting, what="the run to reach batch 3")
        await wait_until(
            pilot, lambda: exported_figure(app) == compact_figure(100), what="2 batches exported"
        )
        assert app.control.service.run_in_progress  # the run has not ended
        assert "running" in screen_text(app)
        gate.open()
        await finish_run(pilot, app)
        await wait_until(
            pilot, lambda: exported_figure(app) == compact_figure(300), what="all of them"
        )


async def test_a_daemon_slower_to_answer_than_a_tick_still_moves_the_figure(
    make_settings, state_factory
) -> None:
    """A status answer that takes longer than the once-a-second tick (a busy daemon, a slow
    link) is shown when it arrives, not replaced by the next question before it can land."""
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=200, seed=8, days=10, malformed=0)
    app, _ = dashboard(settings, state_factory(settings), build_destination)
    prompt = app.control.status

    async def slow_status() -> Any:
        answer = await prompt()
        await asyncio.sleep(1.5)
        return answer

    app.control.status = slow_status  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        await wait_until(
            pilot, lambda: exported_figure(app) == compact_figure(200), what="all of them"
        )


async def test_a_real_time_delivery_moves_the_figure_at_once_and_a_run_keeps_it(
    make_settings, state_factory
) -> None:
    port = free_port()
    settings = make_settings(webhook={"enabled": True, "listen": f"127.0.0.1:{port}"})
    generate_demo_erp(demo_database_path(settings), orders=300, seed=8, days=10, malformed=0)
    state = state_factory(settings)
    an_old_export(state)
    gate = gated(2)
    app, intake_state = dashboard(settings, state, gate.factory)
    # An order the webstore completed that the ERP does not show yet.
    webstore_order = order("SO-RT-1", order_date=datetime.now(UTC).isoformat(timespec="seconds"))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: f"listening on 127.0.0.1:{port}" in screen_text(app))
            await wait_until(pilot, lambda: exported_figure(app) == figure(0))
            await pilot.press("r")
            await wait_until(pilot, lambda: gate.waiting, what="the run to reach batch 3")
            await wait_until(pilot, lambda: exported_figure(app) == figure(100))

            answer = await post_to_intake(port, "/webhooks/order-completed", webstore_order)
            assert answer.status_code == 202
            await wait_until(
                pilot, lambda: exported_figure(app) == figure(101), what="the delivery counted"
            )
            assert app.control.service.run_in_progress  # no run ended to move it

            gate.open()
            await finish_run(pilot, app)
            # The run did not read SO-RT-1 (the ERP lacks it), but it arrived while the run
            # was under way: it is not forgotten.
            await wait_until(pilot, lambda: exported_figure(app) == figure(301))
            with sqlite3.connect(settings.state_database_path) as db:
                assert db.execute(
                    "SELECT count(*) FROM exported_order WHERE order_id = 'SO-RT-1'"
                ).fetchone() == (1,)
            db.close()
    finally:
        if intake_state is not None:
            intake_state.close()


def test_the_figure_says_what_it_counts_and_fits_the_narrow_panel(tmp_path: Path) -> None:
    base = load_settings(write_settings(tmp_path))

    @settings(max_examples=200, deadline=None)
    @given(count=st.integers(min_value=0, max_value=10**9), days=st.integers(1, 3650))
    def check(count: int, days: int) -> None:
        window = dataclasses.replace(
            base, task=dataclasses.replace(base.task, max_days_to_export=days)
        )
        wide = exported_text(count, window)
        narrow = exported_text(count, window, compact=True)
        assert f"{count:,}" in wide and f"{days} day" in wide and "confirmed" in wide
        assert narrow.startswith(f"{count:,}") and f"{days} d" in narrow
        assert len(narrow) <= COMPACT_WIDTH, narrow

    check()
    assert exported_text(1, base) == "1 order of the last 30 days confirmed"
    assert exported_text(200_494, base, compact=True) == "200,494, last 30 days"


def test_the_exported_row_names_the_destination_it_counts_when_the_settings_name_another(
    tmp_path: Path,
) -> None:
    settings = load_settings(write_settings(tmp_path))
    own = destination_identity(settings).identity
    view = StatusView(settings, RunProgress(), None, IntakeStatus(OFF), 497, destination=own)
    other = dataclasses.replace(view, destination="dotdigital:apiuser@example.com/Orders")

    def exported(shown: StatusView) -> str:
        return next(str(text) for name, text in rows_of(shown, compact=False) if name == "Exported")

    assert exported(view) == figure(497)  # the Destination row above names it
    assert exported(other) == f"{figure(497)} by dotdigital:apiuser@example.com/Orders"
