"""The cancelled rule (interfaces.md §7) for every source, through the engine with the demo
ERP, the dry-run file destination and a real state database: an exported order the ERP no
longer lists is sent once as cancelled on a complete run, then forgotten; never a shipped
one, never on a failed or cancelled run; a real-time-only order keeps its day of grace."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from order_export_tui.engine.events import BatchFinished, EngineEvent
from order_export_tui.orders import content_hash, order_problem
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import cancel_order, set_payment_status, simulate_activity
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import ExportedOrder, StateStore
from tests.support.cli import order_export
from tests.support.demo_erp import demo, read_all
from tests.support.engines import make_engine
from tests.support.file_output import file_records
from tests.support.orders import order


async def window_orders(settings: Settings) -> list[dict[str, Any]]:
    """The demo ERP's valid orders, oldest first."""
    docs = await read_all(demo_database_path(settings))
    return [doc for doc in docs if order_problem(doc) is None]


def recent(docs: list[dict[str, Any]], shipping: str) -> str:
    """The newest valid order with that shipping status (well inside the window)."""
    return next(doc["order_id"] for doc in reversed(docs) if doc["shipping_status"] == shipping)


def cancelled_records(settings: Settings) -> list[str]:
    return [r["key"] for r in file_records(settings) if r["json"]["paymentStatus"] == "cancelled"]


async def test_an_order_the_erp_cancelled_is_sent_once_as_cancelled_then_forgotten(
    make_settings: Any,
) -> None:
    settings = make_settings()
    demo(settings)
    docs = await window_orders(settings)
    gone = recent(docs, "not_shipped")
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        assert (await engine.run()).outcome == "succeeded"
        already_cancelled = set(cancelled_records(settings))
        assert gone not in already_cancelled
        sent_before = next(r for r in file_records(settings) if r["key"] == gone)
        cancel_order(demo_database_path(settings), gone)

        report = await engine.run()

        assert report.outcome == "succeeded"
        assert report.counts["cancelled"] == 1
        assert report.counts["new"] == report.counts["updated"] == 0
        last = file_records(settings)[-1]
        assert last["key"] == gone
        assert last["json"] == {**sent_before["json"], "paymentStatus": "cancelled"}
        assert state.exported_orders([gone]) == {}  # forgotten
        assert state.recent_runs(1)[0].counts["cancelled"] == 1

        again = await engine.run()
        assert again.counts["cancelled"] == 0
        assert file_records(settings)[-1] == last  # nothing sent
    finally:
        state.close()


async def test_a_shipped_order_that_left_the_erp_is_forgotten_without_a_send(
    make_settings: Any,
) -> None:
    settings = make_settings()
    demo(settings)
    docs = await window_orders(settings)
    shipped = recent(docs, "shipped")
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        await engine.run()
        records = len(file_records(settings))
        cancel_order(demo_database_path(settings), shipped)

        report = await engine.run()

        assert report.counts["cancelled"] == 0
        assert len(file_records(settings)) == records
        assert state.exported_orders([shipped]) == {}
    finally:
        state.close()


async def test_an_order_whose_date_moved_out_of_the_window_is_not_cancelled(
    make_settings: Any,
) -> None:
    settings = make_settings()
    demo(settings)
    docs = await window_orders(settings)
    moved = recent(docs, "not_shipped")
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        await engine.run()
        records = len(file_records(settings))
        with sqlite3.connect(demo_database_path(settings)) as erp:
            erp.execute(
                "UPDATE sales_header SET order_date_utc = '2001-01-01T10:00:00+00:00'"
                " WHERE order_no = ?",
                (moved,),
            )
        erp.close()

        report = await engine.run()

        assert report.counts["cancelled"] == 0
        assert len(file_records(settings)) == records
        assert state.exported_orders([moved]) == {}  # left the window: forgotten as before
    finally:
        state.close()


async def test_a_failed_run_cancels_nothing(make_settings: Any) -> None:
    settings = make_settings(task={"max_items_to_skip": 3})
    demo(settings, malformed=3)
    docs = await window_orders(settings)
    gone = recent(docs, "not_shipped")
    # a recent one: the oldest can sit on the window's edge
    broken = next(doc["order_id"] for doc in reversed(docs) if doc["order_id"] != gone)
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        assert (await engine.run()).outcome == "succeeded"
        cancel_order(demo_database_path(settings), gone)
        set_payment_status(demo_database_path(settings), broken, "lost")  # a fourth skip

        failed = await engine.run()

        assert failed.outcome == "failed"
        assert failed.counts["cancelled"] == 0
        assert gone not in cancelled_records(settings)
        assert state.exported_orders([gone]).keys() == {gone}
    finally:
        state.close()


async def test_a_run_cancelled_by_the_operator_cancels_nothing(make_settings: Any) -> None:
    settings = make_settings(task={"batch_size": 10})
    demo(settings)
    docs = await window_orders(settings)
    gone = recent(docs, "not_shipped")
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        await engine.run()
        cancel_order(demo_database_path(settings), gone)

        def stop_after_the_first_batch(event: EngineEvent) -> None:
            if isinstance(event, BatchFinished):
                engine.cancel()

        unsubscribe = engine.subscribe(stop_after_the_first_batch)
        stopped = await engine.run()
        unsubscribe()

        assert stopped.outcome == "cancelled"
        assert stopped.counts["cancelled"] == 0
        assert state.exported_orders([gone]).keys() == {gone}
        assert (await engine.run()).counts["cancelled"] == 1
    finally:
        state.close()


def record_realtime(state: StateStore, order_id: str, exported_at: datetime) -> dict[str, Any]:
    """An order delivered in real time only (run_id NULL), as delivery records it."""
    doc = order(
        order_id, order_date=(date.today() - timedelta(days=1)).isoformat() + "T10:00:00+00:00"
    )
    state.record_batch(
        run_id=None,
        now=exported_at,
        exported=[
            ExportedOrder(
                order_id,
                content_hash(doc),
                doc["shipping_status"],
                doc["payment_status"],
                orjson.dumps(doc),
                doc["order_date"],
            )
        ],
        skipped={},
        resolved=[],
    )
    return doc


async def test_an_order_sent_only_in_real_time_keeps_a_day_of_grace(make_settings: Any) -> None:
    settings = make_settings()
    demo(settings)
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        now = datetime.now().astimezone()
        record_realtime(state, "WEB-NEW", now - timedelta(hours=2))
        old = record_realtime(state, "WEB-OLD", now - timedelta(days=2))

        report = await engine.run()

        assert report.counts["cancelled"] == 1
        assert cancelled_records(settings)[-1:] == ["WEB-OLD"]
        last = file_records(settings)[-1]["json"]
        assert (last["id"], last["orderTotal"]) == ("WEB-OLD", old["total"])
        assert state.exported_orders(["WEB-NEW", "WEB-OLD"]).keys() == {"WEB-NEW"}
    finally:
        state.close()


async def test_a_backfill_reads_every_order_from_its_day_and_cancels_too(
    make_settings: Any,
) -> None:
    """`run --since` reads every order from that day on without a read failure: a complete
    read. It forgets the orders it did not meet, so it sends their cancellation too (else
    the cancellation would be lost with them)."""
    settings = make_settings()
    demo(settings)
    docs = await window_orders(settings)
    gone = recent(docs, "not_shipped")
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        await engine.run()
        cancel_order(demo_database_path(settings), gone)
        # A resend reads only its ids: it says nothing about the rest of the window.
        kept = recent(docs, "shipped")
        resent = await engine.run("resend", only=frozenset({kept}), resend=True)
        assert resent.counts["cancelled"] == 0

        report = await engine.run(since=date.today() - timedelta(days=40))

        assert report.counts["cancelled"] == 1
        assert cancelled_records(settings)[-1] == gone
    finally:
        state.close()


async def test_the_demo_erps_activity_cancels_and_refunds_orders_that_the_next_run_sends(
    make_settings: Any,
) -> None:
    settings = make_settings()
    demo(settings)
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        await engine.run()
        done = simulate_activity(demo_database_path(settings), seed=4)
        assert (len(done.cancelled), len(done.refunded), len(done.partially_refunded)) == (3, 2, 2)

        report = await engine.run()

        assert report.counts["cancelled"] == 3
        assert report.counts["updated"] == 4
        statuses = {r["key"]: r["json"]["paymentStatus"] for r in file_records(settings)}
        assert all(statuses[number] == "cancelled" for number in done.cancelled)
        assert all(statuses[number] == "refunded" for number in done.refunded)
        assert all(statuses[number] == "partially_refunded" for number in done.partially_refunded)
    finally:
        state.close()


def test_the_run_table_of_an_older_state_file_gains_the_cancelled_count(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    StateStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE run DROP COLUMN cancelled")
        db.execute("DROP TABLE kept_document")
        db.execute(
            "INSERT INTO run (trigger, started_at, finished_at, outcome, read, new)"
            " VALUES ('scheduled', '2026-11-01T10:00:00+00:00', '2026-11-01T10:01:00+00:00',"
            " 'succeeded', 5, 5)"
        )
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.close()
    state = StateStore(path)
    try:
        (run,) = state.recent_runs()
        assert run.counts["new"] == 5 and run.counts["cancelled"] == 0
    finally:
        state.close()
    with sqlite3.connect(path) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert version == "5" and "kept_document" in tables and "verify_result" in tables


def test_the_run_summary_and_its_json_name_the_cancelled_count(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings()
    demo(settings, orders=60)
    assert order_export("run", cwd=tmp_path).returncode == 0
    docs = asyncio.run(window_orders(settings))
    cancel_order(demo_database_path(settings), recent(docs, "not_shipped"))

    result = order_export("run", "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["cancelled"] == 1
    summary = order_export("run", cwd=tmp_path)
    assert re.search(r"^cancelled\s+0$", summary.stdout + summary.stderr, re.MULTILINE)
    status = json.loads(order_export("status", "--json", cwd=tmp_path).stdout)
    assert status["last_run"]["counts"]["cancelled"] == 0


async def test_orders_sent_as_cancelled_count_as_sent_orders_in_the_metrics(
    make_settings: Any,
) -> None:
    from order_export_tui.service.monitoring import Tallies

    settings = make_settings(task={"batch_size": 25})
    demo(settings)
    docs = await window_orders(settings)
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    tallies = Tallies()
    engine.subscribe(tallies)
    try:
        first = await engine.run()
        cancel_order(demo_database_path(settings), recent(docs, "not_shipped"))
        second = await engine.run()
        assert second.counts["cancelled"] == 1
        assert tallies.orders_sent == first.counts["new"] + 1
    finally:
        state.close()


def test_a_run_keeps_the_document_until_the_order_ships_or_is_forgotten(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.sqlite")
    now = datetime.now().astimezone()
    doc = order("SO-1")
    shipped = {**doc, "shipping_status": "shipped"}

    def export(document: dict[str, Any], run_id: int | None, kept: bytes | None) -> None:
        state.record_batch(
            run_id=run_id,
            now=now,
            exported=[
                ExportedOrder(
                    "SO-1",
                    content_hash(document),
                    document["shipping_status"],
                    document["payment_status"],
                    kept,
                    document["order_date"],
                )
            ],
            skipped={},
            resolved=[],
        )

    def kept() -> list[Any]:
        with sqlite3.connect(tmp_path / "state.sqlite") as db:
            rows = [
                orjson.loads(row[0]) for row in db.execute("SELECT document FROM kept_document")
            ]
        db.close()
        return rows

    def gone() -> list[ExportedOrder]:
        later = now + timedelta(days=3)
        return state.gone_unread(since=now - timedelta(days=30), started_at=later, read=set())

    try:
        export(doc, 1, orjson.dumps(doc))
        assert kept() == [doc]
        assert [orjson.loads(o.document or b"") for o in gone()] == [doc]
        export(shipped, 2, None)  # shipped: never cancelled, nothing kept
        assert kept() == [] and [o.document for o in gone()] == [None]
        export(doc, None, orjson.dumps(doc))  # real time keeps its own, as before
        assert orjson.loads(state.exported_document("SO-1") or b"") == doc
        export(doc, 3, orjson.dumps(doc))
        assert state.exported_document("SO-1") is None  # a run's is not the real-time copy
        assert [orjson.loads(o.document or b"") for o in gone()] == [doc]
        assert state.forget_exported(["SO-1"]) == 1
        assert kept() == [] and gone() == []
    finally:
        state.close()


def test_order_export_demo_activity_makes_the_next_run_cancel_and_refund(
    make_settings: Any, tmp_path: Path
) -> None:
    make_settings()
    assert order_export("demo", "--orders", "80", cwd=tmp_path).returncode == 0
    assert order_export("run", cwd=tmp_path).returncode == 0

    activity = order_export("demo", "--activity", "--seed", "2", cwd=tmp_path)

    assert activity.returncode == 0, activity.stderr
    lines = activity.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "cancelled (deleted)",
        "refunded",
        "partially refunded",
    ]
    report = json.loads(order_export("run", "--json", cwd=tmp_path).stdout)
    assert report["counts"]["cancelled"] == 3 and report["counts"]["updated"] == 4
