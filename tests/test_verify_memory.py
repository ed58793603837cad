"""The last verify survives a restart (interfaces.md §8): each verify's outcome is kept in the
state, on SQLite and on PostgreSQL, and a service started afterwards reads it for the drift
gauge, `/healthz`, `status` and the time of the next scheduled verify."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from order_export_tui.service.export_service import ExportService
from order_export_tui.service.remote import last_verify_of
from order_export_tui.settings import Settings, destination_identity
from order_export_tui.state import StateStore, VerifyRow
from order_export_tui.state.verifies import KEPT_PER_DESTINATION
from tests.conftest import write_settings
from tests.support.cli import order_export
from tests.support.clock import FakeClock
from tests.support.daemon_process import DaemonProcess
from tests.support.demo_erp import demo
from tests.support.drift_platforms import FilePlatform, drift_platform
from tests.support.engines import make_engine
from tests.support.file_output import file_records
from tests.support.ports import free_port
from tests.support.state_backends import both_state_backends, refuse_inserts

state_backend = both_state_backends  # every test here runs on SQLite and on PostgreSQL

GAUGE = "order_export_last_verify_timestamp_seconds"
GAUGE_NEVER = f"{GAUGE} 0.0".encode()


def restarted(settings: Settings, state_factory: Any) -> ExportService:
    """A new service on the state opened again, as a daemon's restart makes it."""
    return ExportService(settings, make_engine(settings, state_factory(settings), FakeClock()))


def metrics(service: ExportService) -> bytes:
    return service.monitoring.metrics_text()


async def exported(settings: Settings, state_factory: Any) -> tuple[ExportService, StateStore]:
    demo(settings, orders=10, malformed=0, days=20)
    state = state_factory(settings)
    engine = make_engine(settings, state, FakeClock())
    report = await engine.run()
    assert report.outcome == "succeeded", report.error
    return ExportService(settings, engine), state


def delete_two(settings: Settings, platform: FilePlatform) -> None:
    for record in file_records(settings)[:2]:
        platform.delete({"order_id": record["key"], "customer": {"email": record["json"]["email"]}})  # type: ignore[arg-type]


def identity(settings: Settings) -> str:
    return destination_identity(settings).identity


def verified_at(settings: Settings, hours_ago: float, *, drift: int = 0) -> VerifyRow:
    when = datetime.now().astimezone() - timedelta(hours=hours_ago)
    return VerifyRow(
        identity(settings), when.isoformat(timespec="seconds"), "schedule", 10, drift, True
    )


async def test_a_restart_keeps_the_drift_gauge_healthz_and_status_of_the_last_verify(
    make_settings: Any, state_factory: Any, tmp_path: Path
) -> None:
    with drift_platform("file", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, state = await exported(settings, state_factory)
        assert GAUGE_NEVER in metrics(service) and last_verify_of(state, settings) is None
        delete_two(settings, platform)  # type: ignore[arg-type]
        answer = await service.verify()
        assert answer.drifting_orders == 2

        after = restarted(settings, state_factory)

        assert after.last_verify is None  # the answer itself (each order) is not kept
        assert b"order_export_drift_orders 2.0" in metrics(after)
        assert GAUGE_NEVER not in metrics(after)
        assert not after.health().healthy
        assert "left 2 orders drifting" in after.health().problems[-1]
        kept = last_verify_of(state_factory(settings), settings)
        assert kept is not None and kept == answer.outcome(identity(settings))
        assert (kept.checked, kept.drift_orders, kept.readable) == (10, 2, True)
        assert after.health().last_verify_at == datetime.fromisoformat(answer.finished_at)

        await after.verify(repair=True)
        again = restarted(settings, state_factory)
        assert again.health().healthy, again.health().problems
        assert b"order_export_drift_orders 0.0" in metrics(again)


async def test_a_verify_that_could_not_read_the_platform_stays_unhealthy_after_a_restart(
    make_settings: Any, state_factory: Any, tmp_path: Path
) -> None:
    with drift_platform("file", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, _ = await exported(settings, state_factory)
        platform.break_reads()
        assert (await service.verify()).error is not None

        after = restarted(settings, state_factory)

        assert "could not read the platform's copy" in after.health().problems[-1]
        kept = after.last_verify_outcome
        assert kept is not None and not kept.readable and not kept.in_sync


async def test_the_first_scheduled_verify_comes_one_interval_after_the_last_one(
    make_settings: Any, state_factory: Any
) -> None:
    settings = make_settings(verify={"interval_hours": 6})
    state_factory(settings).verifies.record(verified_at(settings, 1))

    (job,) = restarted(settings, state_factory).verify_scheduler.jobs

    assert job.next_run is not None
    expected = datetime.now() + timedelta(hours=5)
    assert abs((job.next_run - expected).total_seconds()) < 120


async def test_an_overdue_verify_runs_as_soon_as_the_daemon_serves(
    make_settings: Any, state_factory: Any, tmp_path: Path
) -> None:
    with drift_platform("file", tmp_path) as platform:
        settings = make_settings(**platform.overrides(), verify={"interval_hours": 6})
        _, state = await exported(settings, state_factory)
        state.verifies.record(verified_at(settings, 7))
        after = restarted(settings, state_factory)
        serving = asyncio.create_task(after.serve())
        for _ in range(2000):  # no job.run(): the schedule itself finds it due
            if after.last_verify is not None:
                break
            await asyncio.sleep(0.01)
        await after.stop()
        await serving

        answer = after.last_verify
        assert answer is not None and answer.trigger == "schedule" and answer.in_sync
        (job,) = after.verify_scheduler.jobs
        assert job.next_run is not None and job.next_run > datetime.now() + timedelta(hours=5)


async def test_a_state_that_refuses_the_outcome_leaves_the_verify_answered(
    make_settings: Any,
    state_factory: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    state_backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with drift_platform("file", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, state = await exported(settings, state_factory)
        refuse_inserts(state.path, "verify_result", "no room")
        caplog.set_level(logging.ERROR)

        answer = await service.verify()

        assert answer.in_sync and service.last_verify_outcome == answer.outcome(identity(settings))
        assert "could not be kept in the state" in caplog.text
        assert restarted(settings, state_factory).last_verify_outcome is None


def test_only_the_newest_verifies_of_a_destination_are_kept(
    make_settings: Any, state_factory: Any
) -> None:
    settings = make_settings()
    state = state_factory(settings)
    other = VerifyRow("another destination", "2026-01-01T00:00:00+00:00", "manual", 1, 0, True)
    state.verifies.record(other)
    for hours in range(KEPT_PER_DESTINATION + 5, 0, -1):
        state.verifies.record(verified_at(settings, hours, drift=hours))

    (kept,) = state._db.execute(
        "SELECT count(*) FROM verify_result WHERE destination = ?", (identity(settings),)
    ).fetchall()

    assert int(kept[0]) == KEPT_PER_DESTINATION
    last = state.verifies.last(identity(settings))
    assert last is not None and last.drift_orders == 1
    assert state.verifies.last("another destination") == other


def test_status_shows_the_last_verify_before_and_after_the_daemon_starts(
    tmp_path: Path, daemons: list[DaemonProcess], state_backend: str
) -> None:
    if state_backend != "sqlite":
        pytest.skip("the command line's state here is a file; PostgreSQL is covered above")
    platform = FilePlatform(tmp_path)
    port = free_port()
    write_settings(
        tmp_path, {**platform.overrides(), "monitoring": {"listen": f"127.0.0.1:{port}"}}
    )
    made = order_export("demo", "--orders", "10", "--malformed", "0", "--days", "20", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert order_export("run", cwd=tmp_path).returncode == 0
    assert order_export("verify", cwd=tmp_path).returncode == 0

    alone = json.loads(order_export("status", "--json", cwd=tmp_path).stdout)["last_verify"]

    assert alone["in_sync"] is True and alone["drift_orders"] == 0 and alone["checked"] == 10
    assert alone["readable"] is True and alone["trigger"] == "manual"
    assert "last verify:" in order_export("status", cwd=tmp_path).stdout
    daemon = DaemonProcess(tmp_path)
    daemons.append(daemon)
    daemon.wait_started()
    through = json.loads(order_export("status", "--json", cwd=tmp_path).stdout)
    assert through["process"]["pid"] == daemon.pid and through["last_verify"] == alone
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines()
    gauge = next(line for line in scraped if line.startswith(GAUGE))
    stamp = datetime.fromisoformat(alone["finished_at"]).timestamp()
    assert float(gauge.split()[1]) == stamp
    assert daemon.stop() == 0
