"""Support's commands: `resend`, `retry`, `run --since`, against real processes and the
loopback fakes, and the engine's runs limited to chosen ids."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from order_export_tui.cli import build_parser
from order_export_tui.engine.events import NOT_FOUND, REFUSED, SENT, UNCHANGED
from order_export_tui.engine.runner import ExportEngine, window_start
from order_export_tui.service.export_service import ExportService, RealtimeChannel
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp, ship_order
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from order_export_tui.transport.retry import Retrier
from tests.conftest import write_settings
from tests.fakes.business_central import BusinessCentralFake
from tests.fakes.dotdigital import FakeDotdigital
from tests.support.cli import order_export
from tests.support.dotdigital_account import PASSWORD, PASSWORD_ENV, USER, dotdigital_overrides
from tests.support.file_output import file_records
from tests.support.loopback_destination import LoopbackDestination
from tests.support.ports import free_port
from tests.support.webstore import SECRET, Webstore, payment


async def demo_docs(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every order of the demo ERP, by id, whatever its date."""
    source = DemoErpSource(demo_database_path(settings))
    try:
        start = datetime(1970, 1, 1).astimezone()
        chunks = source.iter_orders(start)
        return {doc["order_id"]: doc async for chunk in chunks for doc in chunk}
    finally:
        await source.close()


def demo_ids(settings: Settings) -> dict[str, dict[str, Any]]:
    return asyncio.run(demo_docs(settings))


def delete_from_demo_erp(path: Path, order_id: str) -> None:
    with sqlite3.connect(path) as conn:
        for table in ("shipment_line", "shipment", "sales_line", "sales_header"):
            if table == "shipment_line":
                conn.execute(
                    "DELETE FROM shipment_line WHERE shipment_no IN"
                    " (SELECT shipment_no FROM shipment WHERE order_no = ?)",
                    (order_id,),
                )
            else:
                conn.execute(f"DELETE FROM {table} WHERE order_no = ?", (order_id,))
    conn.close()


def skipped_ids(settings: Settings) -> list[str]:
    state = StateStore(settings.state_database_path)
    try:
        return state.skipped_order_ids()
    finally:
        state.close()


# --- resend ---------------------------------------------------------------------------------


@pytest.fixture
def dotdigital() -> Iterator[FakeDotdigital]:
    with FakeDotdigital(USER, PASSWORD) as server:
        yield server
    assert server.internal_errors == []


def test_resend_of_an_unchanged_order_makes_exactly_one_write_and_an_unknown_id_exits_1(
    tmp_path: Path, dotdigital: FakeDotdigital
) -> None:
    write_settings(tmp_path, dotdigital_overrides(dotdigital.url))
    env = {PASSWORD_ENV: PASSWORD}
    assert order_export("demo", "--orders", "40", "--malformed", "0", cwd=tmp_path).returncode == 0
    assert order_export("run", cwd=tmp_path, env=env).returncode == 0
    records = dotdigital.records()
    chosen = sorted(records)[7]
    writes = {key: dotdigital.write_count(key) for key in records}
    assert writes[chosen] == 1

    result = order_export("resend", chosen, "SO-NOPE-1", "--json", cwd=tmp_path, env=env)

    assert result.returncode == 1, result.stderr
    assert "SO-NOPE-1" in result.stderr
    assert "not in the ERP, and never exported or skipped" in result.stderr
    answer = json.loads(result.stdout)
    assert {o["order_id"]: o["status"] for o in answer["orders"]} == {
        chosen: SENT,
        "SO-NOPE-1": NOT_FOUND,
    }
    assert dotdigital.write_count(chosen) == 2  # unchanged, and still sent: exactly one write
    assert {key: dotdigital.write_count(key) for key in records if key != chosen} == {
        key: count for key, count in writes.items() if key != chosen
    }

    again = order_export("resend", chosen, cwd=tmp_path, env=env)

    assert again.returncode == 0, again.stderr
    assert f"{chosen}  sent: confirmed by dotdigital" in again.stderr
    assert dotdigital.write_count(chosen) == 3
    plain = order_export("run", "--json", cwd=tmp_path, env=env)
    assert json.loads(plain.stdout)["counts"]["updated"] == 0  # the resend changed nothing


async def test_a_resend_looks_orders_up_by_id_and_never_reads_the_window(
    make_settings: Callable[..., Settings], state_factory: Callable[[Settings], StateStore]
) -> None:
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=60, seed=2, days=20, malformed=0)
    wanted = sorted(await demo_docs(settings))[:3]

    class NoScan(DemoErpSource):
        def iter_orders(self, window_start: datetime) -> Any:
            raise AssertionError("a run limited to chosen ids read the window")

    engine = ExportEngine(
        settings,
        state_factory(settings),
        source_factory=lambda s, r: NoScan(demo_database_path(s)),
        destination_factory=build_destination,
    )
    first = await engine.run("retry", only=frozenset(wanted))
    second = await engine.run("resend", only=frozenset(wanted), resend=True)
    third = await engine.run("retry", only=frozenset(wanted))

    assert [o.status for o in first.orders] == [SENT] * 3
    assert [o.status for o in second.orders] == [SENT] * 3
    assert [o.status for o in third.orders] == [UNCHANGED] * 3
    assert (third.counts["unchanged"], third.counts["new"] + third.counts["updated"]) == (3, 0)
    assert [r["key"] for r in file_records(settings)] == wanted * 2


# --- retry ----------------------------------------------------------------------------------


def test_retry_of_a_vanished_order_removes_it_from_the_skipped_list(tmp_path: Path) -> None:
    write_settings(tmp_path)
    order_export("demo", "--orders", "80", "--malformed", "3", cwd=tmp_path)
    assert order_export("run", cwd=tmp_path).returncode == 0
    from order_export_tui.settings import load_settings

    settings = load_settings(tmp_path / "settings.toml")
    skipped = skipped_ids(settings)
    assert len(skipped) == 3
    vanished = skipped[0]
    delete_from_demo_erp(demo_database_path(settings), vanished)

    result = order_export("retry", cwd=tmp_path)

    assert result.returncode == 1  # one not found, two still refused: each named
    assert f"{vanished}  not found: no longer in the ERP: removed from the skipped list" in (
        result.stderr
    )
    for order_id in skipped[1:]:
        assert f"{order_id}  refused: invalid order:" in result.stderr
    assert skipped_ids(settings) == skipped[1:]  # it left the list; the others stay

    again = order_export("retry", vanished, cwd=tmp_path)

    assert again.returncode == 1
    assert f"{vanished}  not found: not in the ERP, and never exported or skipped" in again.stderr


def test_retry_with_nothing_skipped_exits_0(tmp_path: Path) -> None:
    write_settings(tmp_path)
    order_export("demo", "--orders", "20", "--malformed", "0", cwd=tmp_path)

    result = order_export("retry", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "no skipped orders to re-try" in result.stderr


async def test_a_retried_order_that_was_fixed_in_the_erp_is_sent_and_leaves_the_list(
    make_settings: Callable[..., Settings], state_factory: Callable[[Settings], StateStore]
) -> None:
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=50, seed=4, days=20, malformed=2)
    state = state_factory(settings)
    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=build_destination
    )
    service = ExportService(settings, engine)
    await engine.run()
    broken, other = state.skipped_order_ids()
    good = await demo_docs(settings)
    fixed = next(doc for doc in good.values() if doc["order_id"] not in (broken, other))
    with sqlite3.connect(demo_database_path(settings)) as conn:  # the ERP copies a good order
        conn.execute("DELETE FROM sales_header WHERE order_no = ?", (broken,))
        conn.execute("DELETE FROM sales_line WHERE order_no = ?", (broken,))
        for table in ("sales_header", "sales_line"):
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            picked = ", ".join("?" if name == "order_no" else name for name in columns)
            conn.execute(
                f"INSERT INTO {table} SELECT {picked} FROM {table} WHERE order_no = ?",
                (broken, fixed["order_id"]),
            )
    conn.close()

    answer = await service.retry([broken])

    assert answer.all_confirmed, answer
    assert [(o.order_id, o.status) for o in answer.orders] == [(broken, SENT)]
    assert state.skipped_order_ids() == [other]
    everything = await service.retry()
    assert not everything.all_confirmed
    assert [(o.order_id, o.status) for o in everything.orders] == [(other, REFUSED)]


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_chosen_id_gets_exactly_one_outcome(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("chosen")
    settings_path = write_settings(folder)
    from order_export_tui.settings import load_settings

    settings = load_settings(settings_path)
    generate_demo_erp(demo_database_path(settings), orders=30, seed=9, days=10, malformed=2)
    known = sorted(demo_ids(settings))
    ids = data.draw(
        st.lists(st.one_of(st.sampled_from(known), st.text(min_size=1, max_size=10)), min_size=1)
    )
    resend = data.draw(st.booleans())

    async def go() -> Any:
        state = StateStore(settings.state_database_path)
        try:
            engine = ExportEngine(
                settings, state, source_factory=build_source, destination_factory=build_destination
            )
            service = ExportService(settings, engine)
            return await (service.resend(ids) if resend else service.retry(ids))
        finally:
            state.close()

    answer = asyncio.run(go())

    assert sorted(o.order_id for o in answer.orders) == sorted(set(ids))
    for outcome in answer.orders:
        assert (outcome.status == NOT_FOUND) == (outcome.order_id not in known)
        assert outcome.reason


# --- run --since ----------------------------------------------------------------------------


def test_run_since_exports_exactly_the_orders_from_that_day_and_a_plain_run_then_sends_nothing(
    tmp_path: Path,
) -> None:
    write_settings(tmp_path, {"task": {"max_days_to_export": 10}})
    order_export("demo", "--orders", "300", "--days", "60", "--malformed", "0", cwd=tmp_path)
    from order_export_tui.settings import load_settings

    settings = load_settings(tmp_path / "settings.toml")
    docs = demo_ids(settings)
    since = date.today() - timedelta(days=40)
    start = datetime.combine(since, datetime.min.time()).astimezone()
    expected = {i for i, doc in docs.items() if datetime.fromisoformat(doc["order_date"]) >= start}
    window = window_start(datetime.now().astimezone(), 10)
    in_window = {
        i for i, doc in docs.items() if datetime.fromisoformat(doc["order_date"]) >= window
    }
    assert in_window < expected < set(docs)  # the backfill reaches beyond the window, not all

    result = order_export("run", "--since", since.isoformat(), "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["trigger"] == "backfill"
    assert {record["key"] for record in file_records(settings)} == expected
    assert len(file_records(settings)) == len(expected)

    plain = order_export("run", "--json", cwd=tmp_path)

    counts = json.loads(plain.stdout)["counts"]
    assert (counts["new"], counts["updated"], counts["read"]) == (0, 0, len(in_window))
    assert len(file_records(settings)) == len(expected)  # nothing sent again


# No order is dated before this (a backfill from year 1 failed on dates the clock cannot hold).
FIRST_BACKFILL_DAY = date(1970, 1, 1)


@hypothesis_settings(max_examples=100, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=14),
        st.dates().map(date.isoformat),
        st.dates().map(lambda day: day.strftime("%Y%m%d")),
    )
)
def test_run_since_takes_a_past_date_and_refuses_anything_else(text: str) -> None:
    day = None
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        with contextlib.suppress(ValueError):
            day = date.fromisoformat(text)
    try:
        args = build_parser().parse_args(["run", "--since", text])
    except SystemExit as stop:
        assert stop.code == 2
        assert day is None or day > date.today() or day < FIRST_BACKFILL_DAY
        return
    assert isinstance(args, argparse.Namespace)
    assert day is not None and FIRST_BACKFILL_DAY <= args.since == day <= date.today()


def test_run_since_a_future_day_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    write_settings(tmp_path)
    tomorrow = (date.today() + timedelta(days=1)).isoformat()

    result = order_export("run", "--since", tomorrow, cwd=tmp_path)

    assert result.returncode == 2
    assert "--since" in result.stderr and "in the future" in result.stderr
    assert "Traceback" not in result.stderr


# --- a payment callback with Business Central -----------------------------------------------


async def test_a_business_central_payment_callback_reaches_the_destination_within_seconds(
    make_settings: Callable[..., Settings], loopback: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, store = loopback
    with BusinessCentralFake(client_secret="bc-secret-for-tests") as bc:
        monkeypatch.setenv("BC_CLIENT_SECRET", bc.client_secret)
        numbers = bc.generate(15, 10, activity=False)
        port = free_port()
        settings = make_settings(
            erp={"source": "business_central", "business_central": bc.settings()},
            webhook={"enabled": True, "listen": f"127.0.0.1:{port}"},
            task={"run_on_schedule": True, "run_time": "03:00"},  # the next run is far away
        )
        state = StateStore(settings.state_database_path)
        intake_state = StateStore(settings.state_database_path, durable=True)

        def destination(s: Settings) -> LoopbackDestination:
            return LoopbackDestination(server.url)

        def source(s: Settings, retrier: Retrier) -> Any:
            return build_source(s, retrier)

        engine = ExportEngine(
            settings, state, source_factory=source, destination_factory=destination
        )
        channel = RealtimeChannel(
            settings,
            state=state,
            intake_state=intake_state,
            destination_factory=destination,
            source_factory=source,
            secret=SECRET,
        )
        service = ExportService(settings, engine, realtime=channel)
        await engine.run()
        assert state.exported_document(numbers[3]) is None  # runs keep no copy
        serving = asyncio.create_task(service.serve())
        try:
            while not channel.listening:
                await asyncio.sleep(0.01)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
                started = asyncio.get_running_loop().time()
                answer = await Webstore(c).payment_status(payment(numbers[3], "paid"))
                assert answer.status_code == 202
                while store.orders[numbers[3]]["payment_status"] != "paid":
                    assert asyncio.get_running_loop().time() - started < 5, "not within seconds"
                    await asyncio.sleep(0.02)
            filters = [e.query.get("$filter", "") for e in bc.requests_to("salesOrders")]
            assert sum("number eq" in text for text in filters) == 1
            assert state.event_counts().get("held", 0) == 0
        finally:
            await service.stop()
            await serving
            intake_state.close()
            state.close()


async def test_a_backfill_opens_the_destination_with_backfill_and_other_runs_do_not(
    make_settings: Callable[..., Settings], state_factory: Callable[[Settings], StateStore]
) -> None:
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=40, seed=6, days=60, malformed=0)
    opened: list[dict[str, Any]] = []

    class Recording:
        def __init__(self, inner: Any) -> None:
            self._inner = inner
            self.name = inner.name
            self.max_batches_in_flight = 1

        async def open(self, **flags: Any) -> None:
            opened.append(flags)  # what Mailchimp turns into is_syncing
            await self._inner.open(**flags)

        async def send_batch(self, changes: Any, retrier: Any) -> dict[str, str]:
            return await self._inner.send_batch(changes, retrier)  # type: ignore[no-any-return]

        async def close(self) -> None:
            await self._inner.close()

    engine = ExportEngine(
        settings,
        state_factory(settings),
        source_factory=build_source,
        destination_factory=lambda s: Recording(build_destination(s)),
    )
    ids = sorted(await demo_docs(settings))[:2]
    await engine.run()
    await engine.run("backfill", since=date.today() - timedelta(days=50))
    await engine.run("resend", only=frozenset(ids), resend=True)
    await engine.run("retry", only=frozenset(ids))

    assert opened == [{}, {"backfill": True}, {}, {}]


async def test_on_mailchimp_a_run_since_is_an_is_syncing_backfill_even_with_no_new_order(
    make_settings: Callable[..., Settings],
    state_factory: Callable[[Settings], StateStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.fakes.mailchimp import MailchimpFake
    from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, STORE, mailchimp_overrides

    monkeypatch.setenv(KEY_ENV, KEY)
    with MailchimpFake(KEY, lists=(AUDIENCE,)) as fake:
        settings = make_settings(**mailchimp_overrides(fake))
        generate_demo_erp(demo_database_path(settings), orders=30, seed=8, days=10, malformed=0)
        engine = ExportEngine(
            settings,
            state_factory(settings),
            source_factory=build_source,
            destination_factory=build_destination,
        )
        assert (await engine.run()).outcome == "succeeded"
        after_first = list(fake.syncing_history[STORE])
        docs = await demo_docs(settings)
        unshipped = next(d for d in docs.values() if d["shipping_status"] == "not_shipped")
        ship_order(demo_database_path(settings), unshipped["order_id"])

        backfill = await engine.run("backfill", since=date.today() - timedelta(days=20))

        assert backfill.outcome == "succeeded", backfill.error
        assert (backfill.counts["new"], backfill.counts["updated"]) == (0, 1)
        assert fake.syncing_history[STORE] == [*after_first, True, False]
        assert fake.stores[STORE]["is_syncing"] is False  # set back when the run ends
        assert fake.schema_errors == []
