"""The dashboard over the real engine, the demo ERP and the file (or loopback) destination."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable

from order_export_tui.destinations.base import Destination
from order_export_tui.engine.runner import ExportEngine, local_now
from order_export_tui.service.export_service import ExportService
from order_export_tui.service.hosted import HostedControl
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from order_export_tui.tui import OrderExportApp
from tests.support.gated_file import gated_site

DestinationFactory = Callable[[Settings], Destination]


class GatedDestination:
    """The file destination whose batches after the first `free` wait for `gate`: a run that
    lasts exactly as long as the test wants, stopping at a known batch."""

    def __init__(self, settings: Settings, gate: asyncio.Event, free: int) -> None:
        self._inner = build_destination(settings)
        self._gate = gate
        self._free = free
        self.name = self._inner.name
        self.max_batches_in_flight = 1
        self.waiting = False

    async def open(self) -> None:
        await self._inner.open()

    async def send_batch(self, changes: Any, retrier: Any) -> dict[str, str]:
        if self._free > 0:
            self._free -= 1
        else:
            self.waiting = True
            await self._gate.wait()
            self.waiting = False
        return await self._inner.send_batch(changes, retrier)

    async def close(self) -> None:
        await self._inner.close()


class Gate:
    """Hands out gated destinations and opens them all at once."""

    def __init__(self, free_batches: int) -> None:
        self.free_batches = free_batches
        self.event = asyncio.Event()
        self.destinations: list[GatedDestination] = []

    def factory(self, settings: Settings) -> GatedDestination:
        destination = GatedDestination(settings, self.event, self.free_batches)
        self.destinations.append(destination)
        return destination

    @property
    def waiting(self) -> bool:
        return any(destination.waiting for destination in self.destinations)

    def open(self) -> None:
        self.event.set()


def build_app(
    settings: Settings,
    state: StateStore,
    *,
    destination_factory: DestinationFactory = build_destination,
    clock: Callable[[], datetime] = local_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> OrderExportApp:
    engine = ExportEngine(
        settings,
        state,
        source_factory=build_source,
        destination_factory=destination_factory,
        clock=clock,
    )

    async def no_email(settings: Settings, report: Any) -> None:
        return None

    service = ExportService(settings, engine, notifier=no_email, clock=clock)
    return OrderExportApp(
        settings, control=hosted_control(service, state), clock=clock, monotonic=monotonic
    )


def hosted_control(service: ExportService, state: StateStore) -> HostedControl:
    """The control of a dashboard that hosts the service, as `order-export tui` builds it
    (without the control socket, which the attach tests start for real)."""
    return HostedControl(service, state, role="tui", since=local_now().isoformat())


AppMaker = Callable[..., OrderExportApp]


@pytest.fixture
def make_app(make_settings: Any, state_factory: Any) -> AppMaker:
    """`make_app(orders=..., malformed=..., task={...}, destination_factory=...)`."""

    def make(
        *,
        orders: int = 300,
        malformed: int = 3,
        seed: int = 11,
        destination_factory: DestinationFactory = build_destination,
        **overrides: Any,
    ) -> OrderExportApp:
        settings = make_settings(**overrides)
        generate_demo_erp(
            demo_database_path(settings), orders=orders, seed=seed, days=10, malformed=malformed
        )
        return build_app(settings, state_factory(settings), destination_factory=destination_factory)

    return make


def screen_text(app: App[Any]) -> str:
    """What the terminal shows right now, as plain text lines."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def region_text(app: App[Any], selector: str) -> str:
    """What the terminal shows inside one widget, its lines joined by a space: a value the
    panel wraps over two lines reads as one text."""
    region = app.screen.query_one(selector).content_region
    strips = app.screen._compositor.render_strips()[region.y : region.bottom]
    lines = (strip.crop(region.x, region.right).text for strip in strips)
    return " ".join(" ".join(lines).split())


def exported_figure(app: App[Any]) -> str:
    """The status panel's Exported row as the terminal shows it."""
    text = region_text(app, "#status")
    start = text.find("Exported ")
    end = text.find(" Real-time", start)
    return "" if start < 0 else text[start + len("Exported ") : end if end > 0 else None]


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 20.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.02)
    await pilot.pause()


async def finish_run(pilot: Pilot[Any], app: OrderExportApp) -> None:
    """Wait for the run in flight and for the dashboard to have shown its end."""
    report = await app.control.service.wait_for_run()
    assert report is not None
    await wait_until(
        pilot, lambda: app.progress.run_id == report.run_id and not app.progress.active
    )
    await tables_loaded(pilot, app)


async def tables_loaded(pilot: Pilot[Any], app: OrderExportApp) -> None:
    """Wait for the history, skipped orders and status the dashboard is (re)loading."""

    def idle() -> bool:
        loading = any(
            worker.group in ("history", "skipped") and not worker.is_finished
            for worker in app.workers
        )
        # A table sizes its columns on idle after rows arrive: a snapshot taken before that
        # caught a column half sized on a loaded machine.
        sizing = any(table._require_update_dimensions for table in app.screen.query(DataTable))
        return not loading and not sizing and status_caught_up(app)

    await wait_until(pilot, idle, what="the tables and the status to reload")


def status_caught_up(app: OrderExportApp) -> bool:
    """The status panel shows an answer given after the run the dashboard shows began or
    ended: CI once took the idle snapshot with the Exported line of a mid-run answer."""
    status, progress = app.status, app.progress
    if progress.run_id is None:
        return True
    if status is None:
        return False
    if progress.active:
        return status.run is not None and status.run.run_id == progress.run_id
    last_run = status.last_run or {}
    return status.run is None and last_run.get("run_id") == progress.run_id


def gated(free_batches: int) -> Gate:
    return Gate(free_batches)


@pytest.fixture
def restore_tz() -> Iterator[Callable[[str], None]]:
    before = os.environ.get("TZ")

    def set_tz(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield set_tz
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def gated_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment that puts the gated dry run (tests/support/gated_file.py) on an
    `order-export` process's path; it is on this process's path meanwhile."""
    with gated_site(tmp_path) as env:
        yield env
