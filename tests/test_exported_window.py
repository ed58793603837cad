"""The Exported figure counts the export window's orders the destination holds as the ERP
has them (issue 17, item 7): orders gone from the ERP are forgotten by the next complete run,
orders older than the window do not count, and a state file from before order dates were
kept is migrated on open."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.destinations.file.connector import file_path
from order_export_tui.engine.runner import window_start
from order_export_tui.orders import PAYMENT_STATUSES
from order_export_tui.service.hosted import window_exported_count
from order_export_tui.settings import load_settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import ExportedOrder, StateStore, order_date_key
from order_export_tui.state.dates import general_order_date_key
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, order_export
from tests.support.demo_erp import expected_orders
from tests.support.engines import make_engine
from tests.support.intake_server import payment, running_channel
from tests.support.old_state import OLD_COLUMNS, make_old_state_file
from tests.support.orders import order

PAYMENT_PATH = "/webhooks/payment-status"


def now_window(settings) -> datetime:  # type: ignore[no-untyped-def]
    return window_start(datetime.now().astimezone(), settings.task.max_days_to_export)


def remove_from_erp(path: Path, order_ids: list[str]) -> None:
    """The ERP deletes these orders (a cancelled order purged, a test order removed)."""
    with sqlite3.connect(path) as db:
        for table in ("shipment_line", "shipment", "sales_line", "sales_header"):
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if "order_no" in columns:
                db.executemany(f"DELETE FROM {table} WHERE order_no = ?", [(i,) for i in order_ids])
    db.close()


def exported_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = {row[0] for row in db.execute("SELECT order_id FROM exported_order")}
    db.close()
    return rows


def shipped_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = {
            row[0]
            for row in db.execute(
                "SELECT order_id FROM exported_order WHERE shipping_status = 'shipped'"
            )
        }
    db.close()
    return rows


async def test_orders_removed_from_the_erp_stop_counting_after_the_next_complete_run(
    make_settings, caplog
) -> None:
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=120, seed=3, days=10, malformed=2)
    valid, _ = await expected_orders(settings)
    state = StateStore(settings.state_database_path)
    try:
        engine = make_engine(settings, state)
        assert (await engine.run()).outcome == "succeeded"
        assert state.exported_count(now_window(settings)) == len(valid)
        # Shipped orders: the platform keeps counting them (a gone order not shipped is sent
        # as cancelled instead, interfaces.md §7). The demo ERP's statuses depend on the time
        # of day it is generated at, so they are chosen by their status, not by their id.
        gone = sorted(shipped_ids(settings.state_database_path))[:7]
        assert len(gone) == 7
        remove_from_erp(demo_database_path(settings), gone)

        # A resend or retry reads only its ids: it proves nothing about the others.
        kept = sorted(valid - set(gone))[0]
        assert (await engine.run("resend", only=frozenset({kept}), resend=True)).outcome == (
            "succeeded"
        )
        assert state.exported_count(now_window(settings)) == len(valid)

        with caplog.at_level(logging.INFO, logger="order_export.engine"):
            report = await engine.run("scheduled")
        assert report.outcome == "succeeded"
        assert report.counts["new"] == report.counts["updated"] == 0  # nothing sent again
        assert state.exported_count(now_window(settings)) == len(valid) - len(gone)
        assert exported_ids(settings.state_database_path) == valid - set(gone)
        lines = [r.getMessage() for r in caplog.records if "no longer in the ERP" in r.getMessage()]
        assert lines == [
            f"run {report.run_id}: 7 exported orders are no longer in the ERP, forgotten"
            " (the destination keeps them)"
        ]
        # The destination keeps them: the dry-run file still holds every order once sent.
        sent = {
            record["key"]
            for line in file_path(settings).read_text().splitlines()
            for record in orjson.loads(line)["body"]["records"]
        }
        assert set(gone) <= sent
    finally:
        state.close()


async def test_a_failed_run_forgets_nothing(make_settings) -> None:
    settings = make_settings(task={"batch_size": 10})
    generate_demo_erp(demo_database_path(settings), orders=60, seed=3, days=10, malformed=0)
    valid, _ = await expected_orders(settings)
    state = StateStore(settings.state_database_path)
    try:
        engine = make_engine(settings, state)
        assert (await engine.run()).outcome == "succeeded"
        gone = sorted(valid)[:5]
        remove_from_erp(demo_database_path(settings), gone)
        with sqlite3.connect(demo_database_path(settings)) as erp:  # a change to send
            erp.execute("UPDATE sales_header SET payment_status = 'refunded'")
        erp.close()
        # The dry-run file cannot be written: the run reads the window but fails.
        file_path(settings).unlink()
        file_path(settings).mkdir()
        report = await engine.run()
        assert report.outcome == "failed"
        assert state.exported_count(now_window(settings)) == len(valid)
    finally:
        state.close()


async def test_an_order_outside_the_window_does_not_count_and_is_kept_for_a_backfill(
    make_settings,
) -> None:
    settings = make_settings(task={"max_days_to_export": 20})
    generate_demo_erp(demo_database_path(settings), orders=200, seed=4, days=60, malformed=0)
    state = StateStore(settings.state_database_path)
    try:
        engine = make_engine(settings, state)
        since = (datetime.now().astimezone() - timedelta(days=61)).date()
        backfill = await engine.run(since=since)
        assert backfill.outcome == "succeeded" and backfill.counts["new"] == 200
        in_window, _ = await expected_orders(settings)
        assert 0 < len(in_window) < 200
        assert state.exported_count() == 200
        assert state.exported_count(now_window(settings)) == len(in_window)
        # The status the dashboard and `status --json` show: the same window count.
        count = window_exported_count(state, settings, datetime.now().astimezone())
        assert count == len(in_window)

        # A run over the window does not meet the older orders, and keeps them: they are
        # outside what it read, not gone; a later backfill finds them unchanged.
        assert (await engine.run()).outcome == "succeeded"
        assert state.exported_count() == 200
        again = await engine.run(since=since)
        assert again.counts["unchanged"] == 200 and again.counts["new"] == 0
    finally:
        state.close()


async def test_a_backfill_forgets_the_gone_orders_of_its_longer_window(make_settings) -> None:
    settings = make_settings(task={"max_days_to_export": 20})
    generate_demo_erp(demo_database_path(settings), orders=200, seed=4, days=60, malformed=0)
    state = StateStore(settings.state_database_path)
    try:
        engine = make_engine(settings, state)
        since = (datetime.now().astimezone() - timedelta(days=61)).date()
        assert (await engine.run(since=since)).outcome == "succeeded"
        in_window, _ = await expected_orders(settings)
        old = sorted(exported_ids(settings.state_database_path) - in_window)[:3]
        remove_from_erp(demo_database_path(settings), old)
        assert (await engine.run()).outcome == "succeeded"  # the window run cannot tell
        assert set(old) <= exported_ids(settings.state_database_path)
        assert (await engine.run(since=since)).outcome == "succeeded"
        assert not set(old) & exported_ids(settings.state_database_path)
    finally:
        state.close()


def test_forgetting_keeps_what_was_exported_after_the_run_started_or_lately_in_real_time(
    tmp_path: Path,
) -> None:
    """The state's side of "a real-time delivery during a run is not forgotten" (the
    dashboard test drives it through the webhook)."""
    state = StateStore(tmp_path / "state.sqlite")
    started = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    dated = "2026-11-26T08:00:00+01:00"
    try:
        earlier_run = state.start_run(trigger="manual", started_at=started - timedelta(days=2))
        for order_id, at, run_id in [
            ("SO-READ", -60, earlier_run),
            ("SO-GONE", -60, earlier_run),  # a run sent it, and the ERP no longer has it
            ("SO-RT", 30, None),  # sent in real time during the run
            ("SO-RT-NEW", -3600, None),  # sent in real time an hour ago: maybe not in the ERP yet
            ("SO-RT-OLD", -2 * 86400, None),  # sent in real time two days ago: gone from it
        ]:
            state.record_batch(
                run_id=run_id,
                now=started + timedelta(seconds=at),
                exported=[ExportedOrder(order_id, "h", "not_shipped", "paid", None, dated)],
                skipped={},
                resolved=[],
            )
        forgotten = state.forget_unread(
            since=datetime(2026, 11, 1, tzinfo=UTC), started_at=started, read={"SO-READ"}
        )
        assert forgotten == 2
        everyone = ["SO-READ", "SO-GONE", "SO-RT", "SO-RT-NEW", "SO-RT-OLD"]
        assert state.exported_orders(everyone).keys() == {"SO-READ", "SO-RT", "SO-RT-NEW"}
    finally:
        state.close()


async def test_a_state_file_from_before_order_dates_is_migrated_and_counts_right(
    make_settings,
) -> None:
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=80, seed=6, days=10, malformed=0)
    valid, _ = await expected_orders(settings)
    path = settings.state_database_path
    state = StateStore(path)
    assert (await make_engine(settings, state).run()).outcome == "succeeded"
    state.record_batch(  # as real-time delivery records: with the document
        run_id=None,
        now=datetime.now().astimezone(),
        exported=[
            ExportedOrder(
                order_id,
                "h-" + order_id,
                "not_shipped",
                "paid",
                orjson.dumps(order(order_id, order_date=day)),
                day,
            )
            for order_id, day in [
                ("RT-RECENT", datetime.now(UTC).isoformat()),
                ("RT-OLD", (datetime.now(UTC) - timedelta(days=45)).isoformat()),
            ]
        ]
        + [ExportedOrder("RT-BROKEN", "h", "not_shipped", "paid", b"{not json", None)],
        skipped={},
        resolved=[],
    )
    state.close()
    make_old_state_file(path, 1)

    state = StateStore(path)
    try:
        # Dates come from the kept documents; a run's rows get theirs from the next run.
        assert state.exported_count() == len(valid) + 3
        assert state.exported_count(now_window(settings)) == 1
        report = await make_engine(settings, state).run()
        assert report.outcome == "succeeded"
        assert report.counts["unchanged"] == len(valid)  # nothing is sent again
        # RT-RECENT is not in the ERP, but was sent in real time minutes ago: it may not be
        # there yet, so it stays (for a day).
        assert state.exported_count(now_window(settings)) == len(valid) + 1
        assert exported_ids(path) == valid | {"RT-RECENT", "RT-OLD", "RT-BROKEN"}
    finally:
        state.close()
    with sqlite3.connect(path) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        indexes = {row[1] for row in db.execute("PRAGMA index_list(exported_order)")}
    db.close()
    assert version == "5" and "exported_order_by_date" in indexes


def test_a_migration_that_cannot_finish_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    StateStore(path).close()
    make_old_state_file(path, 1)
    with sqlite3.connect(path) as db:
        # A row whose date cannot be written: the migration's UPDATE fails inside the
        # transaction that added the column (the same as a crash in the middle of it).
        db.execute(
            "INSERT INTO exported_order VALUES ('SO-1', 'h', 'not_shipped', 'paid',"
            " '2026-11-27T10:00:00+00:00', NULL,"
            " CAST(? AS BLOB))",
            (orjson.dumps(order("SO-1")).decode(),),
        )
        db.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON exported_order"
            " BEGIN SELECT RAISE(ABORT, 'disk gone'); END"
        )
    db.close()
    try:
        StateStore(path)
    except Exception as error:
        assert "disk gone" in str(error)
    else:
        raise AssertionError("the migration should have failed")
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(exported_order)")]
        db.execute("DROP TRIGGER refuse")
    db.close()
    assert columns == OLD_COLUMNS[1]  # rolled back whole
    state = StateStore(path)
    try:
        assert state.exported_count(datetime(2026, 11, 1, tzinfo=UTC)) == 1  # order() is 11-27
    finally:
        state.close()


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2999, 12, 31), timezones=offsets
)


@settings(max_examples=150, deadline=None)
@given(a=moments, b=moments, fraction=st.booleans())
def test_order_date_keys_compare_as_the_instants_do(a, b, fraction) -> None:  # type: ignore[no-untyped-def]
    timespec = "microseconds" if fraction else "seconds"
    key_a = order_date_key(a.isoformat(timespec=timespec))
    key_b = order_date_key(b.isoformat(timespec=timespec))
    assert key_a is not None and key_b is not None
    floor_a, floor_b = a.replace(microsecond=0), b.replace(microsecond=0)
    assert (key_a < key_b) == (floor_a < floor_b)
    assert (key_a == key_b) == (floor_a == floor_b)
    # The migration reads dates out of stored documents (bytes) with SQLite's JSON.
    text = a.isoformat(timespec=timespec)
    db = sqlite3.connect(":memory:")
    try:
        (extracted,) = db.execute(
            "SELECT json_extract(CAST(? AS TEXT), '$.order_date')",
            (orjson.dumps(order("SO-1", order_date=text)),),
        ).fetchone()
    finally:
        db.close()
    assert order_date_key(extracted) == key_a


@settings(max_examples=150, deadline=None)
@given(value=st.one_of(st.text(max_size=40), st.integers(), st.none(), st.floats()))
def test_anything_else_has_no_order_date_key(value) -> None:  # type: ignore[no-untyped-def]
    key = order_date_key(value)
    if key is not None:  # only a time with an offset has one
        moment = datetime.fromisoformat(value)
        assert moment.tzinfo is not None
        assert datetime.fromisoformat(key) == moment.replace(microsecond=0)


async def test_a_forgotten_order_holds_its_next_payment_until_the_erp_has_it_again(
    make_settings, loopback
) -> None:
    """Forgetting works with the payment callbacks: a callback for a forgotten order is held
    (not sent on the document of an order the ERP dropped), and the run that finds the order
    again sends it with the callback's status and closes the held event."""
    async with running_channel(make_settings, loopback, demo_orders=30) as channel:
        engine = channel.service.engine
        erp = demo_database_path(channel.settings)
        assert (await engine.run()).outcome == "succeeded"
        order_id = sorted(channel.store.orders)[0]
        erp_status = channel.store.orders[order_id]["payment_status"]
        first, then = [s for s in PAYMENT_STATUSES if s != erp_status][:2]
        await channel.post(PAYMENT_PATH, payment(order_id, first, "2026-11-27T10:00:00Z"))
        await channel.until(lambda: channel.store.orders[order_id]["payment_status"] == first)
        backup = erp.with_name("erp-backup.sqlite")
        with sqlite3.connect(erp) as source, sqlite3.connect(backup) as target:
            source.backup(target)
        source.close()
        target.close()
        remove_from_erp(erp, [order_id])
        assert (await engine.run()).outcome == "succeeded"
        assert channel.state.exported_orders([order_id]) == {}
        assert channel.state.exported_count(now_window(channel.settings)) == 29

        await channel.post(PAYMENT_PATH, payment(order_id, then, "2026-11-27T11:00:00Z"))
        await channel.until(lambda: channel.state.event_counts().get("held") == 1)
        assert channel.store.orders[order_id]["payment_status"] == first  # nothing sent

        with sqlite3.connect(backup) as source, sqlite3.connect(erp) as target:
            source.backup(target)  # the ERP has the order again
        source.close()
        target.close()
        report = await engine.run()
        assert report.counts["new"] == 1
        assert channel.store.orders[order_id]["payment_status"] == then
        assert channel.state.event_counts().get("held", 0) == 0
        assert channel.state.exported_count(now_window(channel.settings)) == 30


def test_status_json_exported_orders_is_the_window_count_with_and_without_a_daemon(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    settings_path = write_settings(tmp_path, {"task": {"max_days_to_export": 20}})
    made = order_export("demo", "--orders", "200", "--days", "60", "--malformed", "0", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    since = (datetime.now().astimezone() - timedelta(days=61)).date().isoformat()
    backfill = order_export("run", "--since", since, "--json", cwd=tmp_path)
    assert json.loads(backfill.stdout)["counts"]["new"] == 200
    in_window, _ = asyncio.run(expected_orders(load_settings(settings_path)))
    assert 0 < len(in_window) < 200

    alone = json.loads(order_export("status", "--json", cwd=tmp_path).stdout)
    assert alone["process"] is None
    assert alone["exported_orders"] == len(in_window)
    daemon = DaemonProcess(tmp_path)
    daemons.append(daemon)
    daemon.wait_started()
    served = json.loads(order_export("status", "--json", cwd=tmp_path).stdout)
    assert served["process"]["pid"] == daemon.pid
    assert served["exported_orders"] == len(in_window)
    assert daemon.stop() == 0


_UTC_SHAPED = st.lists(st.sampled_from("0123456789-:T+ .Z٣"), min_size=19, max_size=19).map(
    lambda chars: "".join(chars) + "+00:00"
)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        _UTC_SHAPED,
        moments.map(lambda moment: moment.astimezone(UTC).isoformat(timespec="seconds")),
        st.sampled_from(
            [
                "2026-11-06T06:51:04+00:00",
                "2026-02-30T00:00:00+00:00",
                "2026-11-06T24:00:00+00:00",
                "2026-11-06 06:51:04+00:00",
                "2026-W45-5T06:51:04+00:00",
                "2026-11-06T065104.5+00:00",
                "٢٠٢٦-11-06T06:51:04+00:00",
            ]
        ),
    )
)
def test_a_utc_order_date_has_the_key_of_the_general_path(text: str) -> None:
    """Dates already in UTC to the second take a shortcut (most of a first run's orders):
    the same key as the general path, or None where it has none."""
    assert order_date_key(text) == general_order_date_key(text)
