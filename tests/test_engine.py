"""The export engine over the demo ERP, to the dry-run file and to a loopback platform."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

from order_export_tui.engine.events import (
    BatchFinished,
    EngineEvent,
    ItemSkipped,
    RetryScheduled,
    RunCounts,
    RunFinished,
    RunStarted,
)
from order_export_tui.engine.runlogs import run_log_files
from order_export_tui.engine.runner import ExportEngine, window_start
from order_export_tui.service.wiring import build_source
from order_export_tui.sources.demo import ship_order
from order_export_tui.sources.demo.connector import demo_database_path
from tests.support.demo_erp import demo, expected_orders
from tests.support.engines import make_engine
from tests.support.fault_server import Fault
from tests.support.file_output import file_records
from tests.support.loopback_destination import LoopbackDestination
from tests.support.state_backends import both_state_backends

state_backend = both_state_backends  # every test here runs on SQLite and on PostgreSQL


async def test_first_run_exports_every_in_window_order_once_and_second_run_nothing(
    make_settings, state_factory
) -> None:
    settings = make_settings()
    demo(settings, days=45)  # a third of the orders lie outside the 30-day window
    valid, malformed = await expected_orders(settings)
    state = state_factory(settings)
    engine = make_engine(settings, state)

    first = await engine.run()

    assert first.outcome == "succeeded", first.error
    keys = [record["key"] for record in file_records(settings)]
    assert sorted(keys) == sorted(valid)  # each once, none outside the window
    assert first.counts["new"] == len(valid)
    assert first.counts["read"] == len(valid) + len(malformed)
    assert first.counts["skipped"] == len(malformed) > 0
    assert {s.order_id for s in state.skipped_orders()} == malformed
    assert state.exported_count() == len(valid)

    second = await engine.run()

    assert second.outcome == "succeeded"
    assert second.counts["new"] == second.counts["updated"] == 0
    assert second.counts["unchanged"] == len(valid)
    assert [r["key"] for r in file_records(settings)] == keys  # nothing more was written


async def test_a_shipping_status_change_sends_exactly_that_order(
    make_settings, state_factory
) -> None:
    settings = make_settings()
    demo(settings)
    engine = make_engine(settings, state_factory(settings))
    await engine.run()
    sent_before = len(file_records(settings))
    valid, _ = await expected_orders(settings)
    unshipped = [
        r["key"] for r in file_records(settings) if r["json"]["shippingStatus"] == "not_shipped"
    ]
    order_id = unshipped[0]

    ship_order(demo_database_path(settings), order_id, tracking_number="TRACK-42")
    report = await engine.run()

    assert report.counts["updated"] == 1
    assert report.counts["new"] == 0
    assert report.counts["unchanged"] == len(valid) - 1
    new_records = file_records(settings)[sent_before:]
    assert [r["key"] for r in new_records] == [order_id]
    assert new_records[0]["json"]["shippingStatus"] == "shipped"
    assert new_records[0]["json"]["trackingNumber"] == "TRACK-42"


async def test_transient_failures_are_retried_until_every_order_arrives(
    make_settings, state_factory, loopback, fake_clock
) -> None:
    server, store = loopback
    settings = make_settings(task={"max_retries": 3, "batch_size": 40})
    demo(settings, orders=120, malformed=0)
    valid, _ = await expected_orders(settings)
    server.plan(
        Fault(status=503),
        Fault(status=429, headers={"Retry-After": "2"}),
        Fault(drop=True),
    )
    events: list[EngineEvent] = []
    engine = make_engine(settings, state_factory(settings), server=server, clock=fake_clock)
    engine.subscribe(events.append)

    report = await engine.run()

    assert report.outcome == "succeeded", report.error
    assert set(store.orders) == valid
    assert report.counts["retried"] == 3
    assert len([e for e in events if isinstance(e, RetryScheduled)]) == 3
    assert 2.0 in fake_clock.sleeps  # the platform's Retry-After was honoured


async def test_rejections_within_the_budget_are_skipped_with_the_platform_reason(
    make_settings, state_factory, loopback, fake_clock
) -> None:
    server, store = loopback
    settings = make_settings(task={"max_items_to_skip": 4})
    demo(settings, orders=100, malformed=0)
    valid, _ = await expected_orders(settings)
    refused = sorted(valid)[:4]
    store.reject = {order_id: "ContactEmailDoesNotExist" for order_id in refused}
    state = state_factory(settings)

    report = await make_engine(settings, state, server=server, clock=fake_clock).run()

    assert report.outcome == "succeeded"
    assert report.counts["skipped"] == 4
    assert set(store.orders) == valid - set(refused)
    skipped = {s.order_id: s.reason for s in state.skipped_orders()}
    assert set(skipped) == set(refused)
    assert all("ContactEmailDoesNotExist" in reason for reason in skipped.values())

    # A later run tries them again; once accepted they are no longer skipped.
    store.reject = {}
    again = await make_engine(settings, state, server=server, clock=fake_clock).run()
    assert again.counts["new"] == 4
    assert state.skipped_orders() == []
    assert set(store.orders) == valid


async def test_more_rejections_than_the_budget_fail_the_run(
    make_settings, state_factory, loopback, fake_clock
) -> None:
    server, store = loopback
    settings = make_settings(task={"max_items_to_skip": 2, "batch_size": 10})
    demo(settings, orders=100, malformed=0)
    valid, _ = await expected_orders(settings)
    store.reject = {order_id: "InvalidJson" for order_id in sorted(valid)[:3]}

    report = await make_engine(
        settings, state_factory(settings), server=server, clock=fake_clock
    ).run()

    assert report.outcome == "failed"
    assert report.counts["skipped"] == 3
    assert "max_items_to_skip = 2" in (report.error or "")
    assert report.counts["read"] < len(valid)  # it stopped at once, not at the end


async def test_retries_end_within_the_configured_window(
    make_settings, state_factory, loopback, fake_clock
) -> None:
    server, _ = loopback
    settings = make_settings(task={"max_retries": 100, "max_retry_interval_seconds": 10})
    demo(settings, orders=20, malformed=0)
    server.plan(*[Fault(status=502) for _ in range(200)])

    report = await make_engine(
        settings, state_factory(settings), server=server, clock=fake_clock
    ).run()

    assert report.outcome == "failed"
    assert "retry window" in (report.error or "")
    assert sum(fake_clock.sleeps) <= 10.0 + 1e-9  # float sums
    assert report.counts["retried"] == len(fake_clock.sleeps) < 100


async def test_a_rate_limit_reset_beyond_the_window_ends_retries_early(
    make_settings, state_factory, loopback, fake_clock
) -> None:
    server, _ = loopback
    settings = make_settings(task={"max_retries": 5, "max_retry_interval_seconds": 30})
    demo(settings, orders=20, malformed=0)
    server.plan(Fault(status=429, headers={"X-RateLimit-Limit": "2000", "X-RateLimit-Reset": "90"}))

    report = await make_engine(
        settings, state_factory(settings), server=server, clock=fake_clock
    ).run()

    assert report.outcome == "failed"
    assert report.counts["retried"] == 0
    assert fake_clock.sleeps == []
    assert "90" in (report.error or "")


async def test_cancel_stops_at_a_batch_boundary_and_leaves_state_consistent(
    make_settings, state_factory, loopback
) -> None:
    server, store = loopback
    settings = make_settings(task={"batch_size": 10})
    demo(settings, orders=100, malformed=0)
    valid, _ = await expected_orders(settings)
    state = state_factory(settings)
    engine = make_engine(settings, state, server=server)
    server.plan(*[Fault(delay=0.05) for _ in range(100)])

    def cancel_after_second_batch(event: EngineEvent) -> None:
        if isinstance(event, BatchFinished) and event.batch_no == 2:
            engine.cancel()

    engine.subscribe(cancel_after_second_batch)
    report = await engine.run()

    assert report.outcome == "cancelled"
    assert report.counts["new"] == 20
    assert state.exported_count() == 20 == len(store.orders)
    assert state.recent_runs(1)[0].outcome == "cancelled"

    rest = await make_engine(settings, state, server=server).run()
    assert rest.counts["new"] == len(valid) - 20
    assert set(store.orders) == valid
    assert max(store.writes.values()) == 1  # nothing was sent twice


async def test_a_task_cancelled_mid_batch_records_nothing_of_that_batch(
    make_settings, state_factory, loopback
) -> None:
    server, _store = loopback
    settings = make_settings(task={"batch_size": 10})
    demo(settings, orders=50, malformed=0)
    state = state_factory(settings)
    engine = make_engine(settings, state, server=server)
    server.plan(Fault(), Fault(delay=2.0))  # the second batch hangs

    task = engine.start_run()
    while state.exported_count() < 10:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert state.exported_count() == 10
    assert state.recent_runs(1)[0].outcome == "cancelled"
    assert engine.last_report is not None and engine.last_report.outcome == "cancelled"


async def test_log_retention_keeps_exactly_the_newest_files(make_settings, state_factory) -> None:
    settings = make_settings(task={"max_archived_log_files": 3})
    demo(settings, orders=20, malformed=1)
    logs_dir = settings.logs_dir_path
    logs_dir.mkdir(parents=True)
    (logs_dir / "notes.txt").write_text("not a run log: left alone")
    engine = make_engine(settings, state_factory(settings))

    reports = [await engine.run() for _ in range(5)]

    kept = run_log_files(logs_dir)
    assert [str(p) for p in kept] == [r.log_file for r in reversed(reports[-3:])]
    assert (logs_dir / "notes.txt").exists()
    text = Path(reports[-1].log_file or "").read_text()
    assert "task.batch_size = 50" in text
    assert "skipped" in text and "invalid order" in text
    assert "succeeded" in text


async def test_events_describe_the_run(make_settings, state_factory) -> None:
    settings = make_settings(task={"batch_size": 25})
    demo(settings, orders=60, malformed=2)
    engine = make_engine(settings, state_factory(settings))
    seen: list[EngineEvent] = []

    async def collect() -> None:
        async for event in engine.events():
            seen.append(event)
            if isinstance(event, RunFinished):
                return

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0)
    report = await engine.run()
    await asyncio.wait_for(collector, 5)

    assert isinstance(seen[0], RunStarted) and seen[0].total == report.counts["read"]
    batches = [e for e in seen if isinstance(e, BatchFinished)]
    assert [b.batch_no for b in batches] == list(range(1, len(batches) + 1))
    assert batches[-1].processed == report.counts["read"]
    assert len([e for e in seen if isinstance(e, ItemSkipped)]) == 2
    assert isinstance(seen[-1], RunFinished) and seen[-1].report == report


async def test_window_start_is_server_local_midnight() -> None:
    now = datetime(2026, 11, 27, 10, 30).astimezone()
    start = window_start(now, 30)
    assert start.date() == (now - timedelta(days=30)).date()
    assert (start.hour, start.minute, start.second) == (0, 0, 0)
    assert start.utcoffset() is not None


async def test_batches_in_flight_overlap_and_are_recorded_in_read_order(
    make_settings, state_factory, loopback
) -> None:
    server, store = loopback
    settings = make_settings(task={"batch_size": 10})
    demo(settings, orders=100, malformed=0)
    valid, _ = await expected_orders(settings)
    server.plan(*[Fault(delay=0.2) for _ in range(10)])
    state = state_factory(settings)
    engine = ExportEngine(
        settings,
        state,
        source_factory=build_source,
        destination_factory=lambda s: LoopbackDestination(server.url, in_flight=4),
    )
    events: list[EngineEvent] = []
    engine.subscribe(events.append)

    report = await engine.run()

    assert report.counts["new"] == len(valid) == state.exported_count()
    assert set(store.orders) == valid
    assert 2 <= server.max_in_flight <= 4
    finished = [e.batch_no for e in events if isinstance(e, BatchFinished)]
    assert finished == list(range(1, 11))


async def test_a_cancel_with_batches_in_flight_records_them_all(
    make_settings, state_factory, loopback
) -> None:
    server, store = loopback
    settings = make_settings(task={"batch_size": 10})
    demo(settings, orders=100, malformed=0)
    server.plan(*[Fault(delay=0.1) for _ in range(10)])
    state = state_factory(settings)
    engine = ExportEngine(
        settings,
        state,
        source_factory=build_source,
        destination_factory=lambda s: LoopbackDestination(server.url, in_flight=3),
    )
    engine.subscribe(
        lambda e: engine.cancel() if isinstance(e, BatchFinished) and e.batch_no == 1 else None
    )

    report = await engine.run()

    assert report.outcome == "cancelled"
    # Everything the destination received was recorded: nothing will be sent twice.
    assert state.exported_count() == len(store.orders) == report.counts["new"]
    assert report.counts["new"] % 10 == 0


async def test_a_run_limited_to_chosen_orders_sends_only_those(
    make_settings, state_factory, loopback, fake_clock
) -> None:
    server, store = loopback
    settings = make_settings()
    demo(settings, orders=60, malformed=0)
    valid, _ = await expected_orders(settings)
    chosen = sorted(valid)[:2]
    store.reject = {order_id: "ContactEmailDoesNotExist" for order_id in chosen}
    state = state_factory(settings)
    await make_engine(settings, state, server=server, clock=fake_clock).run()
    store.reject = {}
    writes_before = dict(store.writes)

    retry = await make_engine(settings, state, server=server, clock=fake_clock).run(
        "retry", only=frozenset(chosen)
    )

    assert retry.counts["read"] == retry.counts["new"] == 2
    assert state.skipped_orders() == []
    assert {k: v for k, v in store.writes.items() if writes_before.get(k) != v} == {
        order_id: 1 for order_id in chosen
    }


def test_run_counts_as_a_dict_name_every_count_in_order() -> None:
    """`as_dict` is written out field by field (a batch's event carries it): it must stay
    what `dataclasses.asdict` gives, for a count added later too."""
    counts = RunCounts(*range(1, len(dataclasses.fields(RunCounts)) + 1))
    assert list(counts.as_dict().items()) == list(dataclasses.asdict(counts).items())
