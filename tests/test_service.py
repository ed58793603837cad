"""The scheduler and the service, on a wall clock moved by hand: no real waiting."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.export_service import (
    ExportService,
    FailureEmailOutcome,
    RunRequestSkipped,
    ServiceEvent,
    schedule_description,
)
from order_export_tui.service.notify import NotificationResult
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from tests.support.wall_clock import FakeWallClock


class GatedFileDestination:
    """The dry-run file destination, whose batches wait until the test opens the gate:
    a run that lasts as long as the test wants."""

    def __init__(self, settings: Settings, gate: asyncio.Event) -> None:
        self._inner = build_destination(settings)
        self._gate = gate
        self.name = self._inner.name
        self.max_batches_in_flight = 1

    async def open(self) -> None:
        await self._inner.open()

    async def send_batch(self, changes, retrier):  # type: ignore[no-untyped-def]
        await self._gate.wait()
        return await self._inner.send_batch(changes, retrier)

    async def close(self) -> None:
        await self._inner.close()


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> FakeWallClock:
    today_9am = datetime.now().replace(hour=9, minute=0, second=0, microsecond=0)
    return FakeWallClock(today_9am).install(monkeypatch)


def build_service(
    settings: Settings,
    state: StateStore,
    clock: FakeWallClock,
    *,
    gate: asyncio.Event | None = None,
    notifier: Any = None,
) -> tuple[ExportService, list[ServiceEvent]]:
    engine = ExportEngine(
        settings,
        state,
        source_factory=build_source,
        destination_factory=(
            build_destination if gate is None else lambda s: GatedFileDestination(s, gate)
        ),
        clock=clock.aware,
    )

    async def no_email(settings: Settings, report: Any) -> None:
        return None

    service = ExportService(settings, engine, notifier=notifier or no_email, clock=clock.aware)
    events: list[ServiceEvent] = []
    service.subscribe(events.append)
    return service, events


def scheduled(settings_maker: Any, **task: Any) -> Settings:
    settings = settings_maker(task={"run_on_schedule": True, **task})
    generate_demo_erp(demo_database_path(settings), orders=40, seed=3, days=10, malformed=0)
    return settings


def run_starts(state: StateStore) -> list[str]:
    return [run.started_at[11:16] for run in reversed(state.recent_runs())]


async def test_an_interval_schedule_fires_every_n_minutes(
    make_settings, state_factory, wall_clock
) -> None:
    settings = scheduled(make_settings, run_interval_minutes=15)
    state = state_factory(settings)
    service, _ = build_service(settings, state, wall_clock)

    assert service.next_run == wall_clock.aware() + timedelta(minutes=15)
    for minute in range(1, 61):
        wall_clock.set(9, 0)
        wall_clock.advance(minute * 60)
        service.run_pending()
        await service.wait_for_run()

    assert run_starts(state) == ["09:15", "09:30", "09:45", "10:00"]
    assert service.next_run is not None and service.next_run.strftime("%H:%M") == "10:15"


async def test_a_tick_during_a_long_run_is_skipped_and_recorded_never_queued(
    make_settings, state_factory, wall_clock
) -> None:
    settings = scheduled(make_settings, run_interval_minutes=10)
    state = state_factory(settings)
    gate = asyncio.Event()
    service, events = build_service(settings, state, wall_clock, gate=gate)

    wall_clock.set(9, 10)
    service.run_pending()  # starts a run that waits at the gate
    await asyncio.sleep(0.05)
    assert service.run_in_progress
    wall_clock.set(9, 20)
    service.run_pending()  # due again while the first run lasts
    wall_clock.set(9, 25)
    gate.set()
    report = await service.wait_for_run()
    assert report is not None and report.outcome == "succeeded"
    wall_clock.set(9, 30)
    service.run_pending()
    await service.wait_for_run()

    assert run_starts(state) == ["09:10", "09:30"]  # 09:20 was not run late at 09:25
    skipped = [e for e in events if isinstance(e, RunRequestSkipped)]
    assert [(e.at.strftime("%H:%M"), e.trigger) for e in skipped] == [("09:20", "schedule")]
    assert state.skipped_ticks()[0][1:] == ("schedule", "a run is already in progress")


async def test_a_daily_run_time_fires_once_a_day_at_that_server_time(
    make_settings, state_factory, wall_clock
) -> None:
    settings = scheduled(make_settings, run_interval_minutes=0, run_time="02:30")
    state = state_factory(settings)
    wall_clock.set(1, 0)
    service, _ = build_service(settings, state, wall_clock)
    assert service.next_run is not None
    assert service.next_run.strftime("%H:%M") == "02:30"

    for hour, minute in [(2, 29), (2, 30), (2, 31), (23, 59)]:
        wall_clock.set(hour, minute)
        service.run_pending()
        await service.wait_for_run()
    wall_clock.set(2, 30, days=1)
    service.run_pending()
    await service.wait_for_run()

    starts = [run.started_at[:16] for run in reversed(state.recent_runs())]
    day_one = wall_clock.now.date() - timedelta(days=1)
    assert starts == [f"{day_one}T02:30", f"{wall_clock.now.date()}T02:30"]


async def test_manual_only_never_fires(make_settings, state_factory, wall_clock) -> None:
    settings = make_settings(task={"run_on_schedule": False, "run_interval_minutes": 5})
    state = state_factory(settings)
    service, _ = build_service(settings, state, wall_clock)

    assert service.next_run is None
    for _ in range(48):
        wall_clock.advance(1800)
        service.run_pending()
    assert state.recent_runs() == []


async def test_a_settings_change_reschedules_at_once(
    make_settings, state_factory, wall_clock
) -> None:
    settings = scheduled(make_settings, run_interval_minutes=60)
    state = state_factory(settings)
    service, _ = build_service(settings, state, wall_clock)
    assert service.next_run is not None and service.next_run.strftime("%H:%M") == "10:00"

    wall_clock.set(9, 5)
    faster = make_settings(task={"run_on_schedule": True, "run_interval_minutes": 5})
    service.apply_settings(faster)
    assert service.next_run is not None and service.next_run.strftime("%H:%M") == "09:10"
    daily = make_settings(
        task={"run_on_schedule": True, "run_interval_minutes": 0, "run_time": "18:45"}
    )
    service.apply_settings(daily)
    assert service.next_run is not None and service.next_run.strftime("%H:%M") == "18:45"
    service.apply_settings(make_settings(task={"run_on_schedule": False}))
    assert service.next_run is None


async def test_the_loop_sleeps_until_the_next_due_time_a_minute_at_most(
    make_settings, state_factory, wall_clock
) -> None:
    settings = scheduled(make_settings, run_interval_minutes=2)
    state = state_factory(settings)
    service, _ = build_service(settings, state, wall_clock)
    sleeps: list[float] = []

    async def fake_wait(wake: asyncio.Event, timeout: float) -> None:
        await service.wait_for_run()  # a run started by this tick starts at the tick's time
        sleeps.append(round(timeout, 3))
        wall_clock.advance(timeout)
        if len(sleeps) == 5:
            await service.stop()

    service._wait = fake_wait  # the injected wait of the constructor, set late for the closure
    await asyncio.wait_for(service.serve(), 10)

    assert sleeps == [60.0, 60.0, 60.0, 60.0, 60.0]  # 2 minutes, woken at least every minute
    assert run_starts(state) == ["09:02", "09:04"]


async def test_stop_ends_the_serving_loop_promptly(
    make_settings, state_factory, wall_clock
) -> None:
    settings = scheduled(make_settings, run_interval_minutes=600)
    state = state_factory(settings)
    service, _ = build_service(settings, state, wall_clock)
    serving = asyncio.create_task(service.serve())
    await asyncio.sleep(0.05)
    await service.stop()
    done, _ = await asyncio.wait({serving}, timeout=2)  # its idle wait is 60 s
    serving.cancel()

    assert done == {serving}, "stop() left the loop waiting for its idle timeout"
    assert serving.exception() is None
    assert run_starts(state) == []  # stopping started no run


async def test_a_failed_run_reports_its_failure_email(
    make_settings, state_factory, wall_clock
) -> None:
    settings = make_settings(task={"max_items_to_skip": 0})
    generate_demo_erp(demo_database_path(settings), orders=30, seed=3, days=10, malformed=2)
    sent: list[int] = []

    async def notifier(settings: Settings, report: Any) -> NotificationResult | None:
        if report.outcome != "failed":
            return None
        sent.append(report.run_id)
        return NotificationResult(
            sent=False, error="127.0.0.1:1: connection refused", recipients=[]
        )

    service, events = build_service(
        settings, state_factory(settings), wall_clock, notifier=notifier
    )
    assert service.request_run("manual")
    report = await service.wait_for_run()

    assert report is not None and report.outcome == "failed"
    assert sent == [report.run_id]
    outcomes = [e for e in events if isinstance(e, FailureEmailOutcome)]
    assert len(outcomes) == 1 and not outcomes[0].result.sent
    assert service.last_notification is not None
    assert "connection refused" in (service.last_notification.error or "")


@pytest.mark.parametrize(
    ("task", "said"),
    [
        ({"run_interval_minutes": 1}, "every minute"),
        ({"run_interval_minutes": 15}, "every 15 minutes"),
        ({"run_interval_minutes": 0, "run_time": "02:30"}, "daily at 02:30 (server time)"),
        ({"run_on_schedule": False}, "manual only"),
    ],
)
def test_the_schedule_reads_as_an_operator_says_it(make_settings, task, said) -> None:
    assert schedule_description(make_settings(task={"run_on_schedule": True, **task})) == said
