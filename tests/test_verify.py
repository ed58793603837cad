"""`verify` (interfaces.md §8) through the service, as the daemon, the dashboard and the
command run it, against each destination's loopback fake: it names each kind of drift,
writes nothing without a repair, repairs all of it through a recorded run with one, and
fails (never "in sync") when the platform cannot be read."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import tempfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_export_tui.destinations.readback import platform_view
from order_export_tui.destinations.readback_spill import document_spill
from order_export_tui.engine.cancelled_document import cancelled_document
from order_export_tui.engine.runner import window_start
from order_export_tui.orders import OrderDocument, order_problem
from order_export_tui.service.control_server import ControlServer
from order_export_tui.service.export_service import ExportService, wait_for_event
from order_export_tui.service.hosted import HostedControl
from order_export_tui.service.verify_answer import DriftItem, VerifyAnswer
from order_export_tui.service.wire import decode
from order_export_tui.settings import Settings, load_settings
from order_export_tui.sources.demo import DemoErpSource
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from tests.conftest import write_settings
from tests.support.clock import FakeClock
from tests.support.demo_erp import demo
from tests.support.dotdigital_account import PASSWORD, PASSWORD_ENV
from tests.support.drift_platforms import (
    CHANGED_FIELDS,
    PLATFORMS,
    changed,
    drift_platform,
    erp_value,
    extra_order,
)
from tests.support.engines import make_engine
from tests.support.mailchimp_account import KEY, KEY_ENV, STORE
from tests.support.orders import VALID


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


async def window_documents(settings: Settings) -> list[OrderDocument]:
    """The ERP's valid orders of the window, by order id."""
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    source = DemoErpSource(demo_database_path(settings))
    with document_spill() as spill:
        async for chunk in source.iter_orders(start):
            spill.add_many(doc for doc in chunk if order_problem(doc) is None)
        await source.close()
        return list(spill.sorted())


async def exported_copy(
    settings: Settings, state: StateStore, clock: FakeClock, orders: int = 40
) -> tuple[ExportService, list[OrderDocument]]:
    """The platform holding a run's copy of a demo ERP, and the service that verifies it."""
    demo(settings, orders=orders, malformed=2, days=20)
    engine = make_engine(settings, state, clock)
    report = await engine.run()
    assert report.outcome == "succeeded", report.error
    return ExportService(settings, engine), await window_documents(settings)


def ids(answer: VerifyAnswer) -> set[str]:
    return {item.order_id for item in answer.drift}


@pytest.mark.parametrize("name", PLATFORMS)
async def test_verify_names_each_kind_of_drift_writes_nothing_and_a_repair_makes_it_true(
    name: str, make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform(name, tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        state = state_factory(settings)
        service, docs = await exported_copy(settings, state, fake_clock)
        clean = await service.verify()
        assert clean.in_sync, clean.summary()
        assert clean.checked == len(docs) and clean.drift == ()
        gone, altered = docs[0], docs[1]
        platform.delete(gone)
        held, value = changed(altered, "payment_status")
        platform.hold(held)
        platform.hold(extra_order(docs[2], "ZZ-EXTRA-1"))
        written = platform.writes()

        found = await service.verify()

        assert platform.writes() == written  # reading only
        assert not found.in_sync and found.error is None
        assert sorted(found.drift, key=lambda item: item.order_id) == [
            DriftItem(gone["order_id"], "missing"),
            DriftItem(
                altered["order_id"], "different", "payment_status", value, altered["payment_status"]
            ),
            DriftItem("ZZ-EXTRA-1", "extra"),
        ]
        assert found.repaired == () and found.drifting_orders == 3
        assert found.as_json()["in_sync"] is False

        fixed = await service.verify(repair=True)

        assert fixed.in_sync, fixed.summary()
        assert sorted(fixed.repaired) == sorted(ids(found))
        assert platform.writes() > written
        repair_run = state.recent_runs(1)[0]
        assert (repair_run.trigger, repair_run.outcome) == ("repair", "succeeded")
        assert fixed.repair_run_id == repair_run.run_id
        again = await service.verify()
        assert again.in_sync and again.drift == (), again.drift_lines()
        assert platform.problems() == []


async def test_a_dotdigital_copy_left_under_another_e_mail_is_deleted_by_a_repair(
    make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform("dotdigital", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        state = state_factory(settings)
        service, docs = await exported_copy(settings, state, fake_clock, 10)
        copied, moved = docs[0], docs[1]
        fake = platform.fake  # type: ignore[attr-defined]
        beside, elsewhere = changed(copied, "email")[0], changed(moved, "email")[0]
        platform.hold(beside)  # a second copy under another contact
        fake.remove_record(moved["order_id"])  # a move at the platform the state never saw
        platform.hold(elsewhere)
        erp_emails = {doc["order_id"]: doc["customer"]["email"] for doc in (copied, moved)}

        found = await service.verify()
        assert {(i.order_id, i.field, i.platform) for i in found.drift} == {
            (copied["order_id"], "email", beside["customer"]["email"]),
            (moved["order_id"], "email", elsewhere["customer"]["email"]),
        }
        fixed = await service.verify(repair=True)

        assert fixed.in_sync, fixed.drift_lines()
        assert sorted(fixed.repaired) == sorted(erp_emails)
        for order_id, email in erp_emails.items():
            assert [held.lower() for held in fake.held_by(order_id)] == [email.lower()]
        assert fake.count("DELETE") == 2
        assert platform.problems() == []


async def test_a_mailchimp_order_under_another_customer_is_moved_back_by_a_repair(
    make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform("mailchimp", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, docs = await exported_copy(settings, state_factory(settings), fake_clock, 10)
        elsewhere, _ = changed(docs[0], "email")
        platform.hold(elsewhere)

        fixed = await service.verify(repair=True)

        assert fixed.in_sync, fixed.drift_lines()
        assert fixed.repaired == (docs[0]["order_id"],)
        fake = platform.fake  # type: ignore[attr-defined]
        held = fake.store_orders(STORE)[docs[0]["order_id"]]
        assert held["customer"]["email_address"] == docs[0]["customer"]["email"]
        assert len(fake.requests_to("DELETE", f"/orders/{docs[0]['order_id']}")) == 1
        assert platform.problems() == []


async def test_an_extra_order_is_sent_as_cancelled_at_mailchimp(
    make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform("mailchimp", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, docs = await exported_copy(settings, state_factory(settings), fake_clock, 10)
        platform.hold(extra_order(docs[0], "ZZ-EXTRA-2"))

        fixed = await service.verify(repair=True)

        assert fixed.repaired == ("ZZ-EXTRA-2",)
        order = platform.fake.store_orders("demo-store")["ZZ-EXTRA-2"]  # type: ignore[attr-defined]
        assert order["financial_status"] == "cancelled"
        assert order["cancelled_at_foreign"]


async def test_an_order_gone_from_the_erp_is_sent_as_cancelled_keeping_what_mailchimp_knew(
    make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform("mailchimp", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, docs = await exported_copy(settings, state_factory(settings), fake_clock, 10)
        gone = docs[0]
        with sqlite3.connect(demo_database_path(settings)) as erp:  # cancelled in the ERP
            erp.execute("DELETE FROM sales_line WHERE order_no = ?", (gone["order_id"],))
            erp.execute("DELETE FROM shipment WHERE order_no = ?", (gone["order_id"],))
            erp.execute("DELETE FROM sales_header WHERE order_no = ?", (gone["order_id"],))
        fake: Any = platform.fake  # type: ignore[attr-defined]
        before = fake.store_orders("demo-store")[gone["order_id"]]

        fixed = await service.verify(repair=True)

        assert [item.kind for item in fixed.drift] == ["extra"] and fixed.in_sync
        after = fake.store_orders("demo-store")[gone["order_id"]]
        assert after["financial_status"] == "cancelled" and after["cancelled_at_foreign"]
        for kept in ("customer", "currency_code", "order_total", "processed_at_foreign"):
            assert after[kept] == before[kept], kept


async def test_a_run_sent_order_not_shipped_yet_is_cancelled_with_its_own_lines(
    make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform("mailchimp", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, docs = await exported_copy(settings, state_factory(settings), fake_clock, 10)
        gone = next(doc for doc in docs if doc["shipping_status"] != "shipped")
        with sqlite3.connect(demo_database_path(settings)) as erp:  # cancelled in the ERP
            erp.execute("DELETE FROM sales_line WHERE order_no = ?", (gone["order_id"],))
            erp.execute("DELETE FROM sales_header WHERE order_no = ?", (gone["order_id"],))
        fake: Any = platform.fake  # type: ignore[attr-defined]
        before = fake.store_orders("demo-store")[gone["order_id"]]

        fixed = await service.verify(repair=True)

        assert fixed.repaired == (gone["order_id"],)
        after = fake.store_orders("demo-store")[gone["order_id"]]
        assert after["financial_status"] == "cancelled"
        sold = [(line["product_id"], line["quantity"]) for line in before["lines"]]
        assert [(line["product_id"], line["quantity"]) for line in after["lines"]] == sold


def test_the_cancelled_document_starts_from_the_one_last_sent_else_from_the_platform() -> None:
    doc = copy.deepcopy(VALID)
    stored = cancelled_document(orjson.dumps(doc), platform_view(doc))
    assert stored == {**doc, "payment_status": "cancelled"}
    made = cancelled_document(None, platform_view(doc))
    assert order_problem(made) is None and made["payment_status"] == "cancelled"
    assert platform_view(made) == replace(
        platform_view(doc), payment_status="cancelled", cancelled=True, line_count=1
    )


@pytest.mark.parametrize("name", PLATFORMS)
async def test_a_platform_that_cannot_be_read_is_never_in_sync(
    name: str, make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform(name, tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, _ = await exported_copy(settings, state_factory(settings), fake_clock, 10)
        platform.break_reads()

        answer = await service.verify(repair=True)

        assert answer.started and answer.error is not None
        assert not answer.in_sync and answer.repaired == ()
        assert "failed" in answer.summary()
        assert service.health().problems[-1].endswith("could not read the platform's copy")


def break_by_dropping(platform: Any) -> None:
    """Both fakes drop every read of the orders' listing (connections closed unanswered)."""
    platform.fake.drop(100, when=lambda method, path: method == "GET" and "/orders" in path.lower())


@pytest.mark.parametrize("name", ["mailchimp", "dotdigital"])
async def test_a_platform_that_drops_every_read_fails_the_verify(
    name: str, make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform(name, tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, _ = await exported_copy(settings, state_factory(settings), fake_clock, 10)
        break_by_dropping(platform)

        answer = await service.verify()

        assert answer.error is not None and not answer.in_sync


async def test_health_and_gauges_follow_the_last_verify(
    make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform("file", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, docs = await exported_copy(settings, state_factory(settings), fake_clock, 10)
        assert b"order_export_last_verify_timestamp_seconds 0.0" in metrics(service)
        platform.delete(docs[0])
        platform.delete(docs[1])

        await service.verify()

        assert not service.health().healthy
        assert "left 2 orders drifting" in service.health().problems[-1]
        assert b"order_export_drift_orders 2.0" in metrics(service)
        assert b"order_export_last_verify_timestamp_seconds 0.0" not in metrics(service)
        await service.verify(repair=True)
        assert service.health().healthy, service.health().problems
        assert b"order_export_drift_orders 0.0" in metrics(service)


def metrics(service: ExportService) -> bytes:
    return service.monitoring.metrics_text()


async def test_verify_waits_for_no_run_and_no_run_starts_beside_it(
    make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform("file", tmp_path) as platform:
        settings = make_settings(**platform.overrides())
        service, _ = await exported_copy(settings, state_factory(settings), fake_clock, 10)
        assert service.request_run("manual")

        refused = await service.verify()

        assert not refused.started and "a run is already in progress" in refused.message
        await service.wait_for_run()
        assert service.last_verify is None  # a verify that did not start is no verify


# --- the schedule ---------------------------------------------------------------------------


async def test_the_daemon_verifies_and_repairs_on_its_interval(
    make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform("file", tmp_path) as platform:
        settings = make_settings(**platform.overrides(), verify={"interval_hours": 6})
        service, docs = await exported_copy(settings, state_factory(settings), fake_clock, 10)
        (job,) = service.verify_scheduler.jobs
        assert (job.interval, job.unit) == (6, "hours")
        platform.delete(docs[0])
        serving = asyncio.create_task(service.serve())
        job.run()  # the interval has passed
        for _ in range(1000):
            if service.last_verify is not None:
                break
            await asyncio.sleep(0.01)
        await service.stop()
        await serving

        answer = service.last_verify
        assert answer is not None and answer.trigger == "schedule"
        assert answer.repaired == (docs[0]["order_id"],) and answer.in_sync


async def test_a_scheduled_verify_due_during_a_run_waits_for_its_end(
    make_settings: Any, state_factory: Any, fake_clock: FakeClock, tmp_path: Path
) -> None:
    with drift_platform("file", tmp_path) as platform:
        settings = make_settings(**platform.overrides(), verify={"interval_hours": 1})
        demo(settings, orders=400, malformed=0, days=20)
        engine = make_engine(settings, state_factory(settings), fake_clock)

        async def briefly(event: asyncio.Event, timeout: float) -> None:
            await wait_for_event(event, min(timeout, 0.02))

        service = ExportService(settings, engine, wait=briefly)
        runs: list[bool] = []
        service.subscribe(lambda event: runs.append(service.run_in_progress))
        assert service.request_run("manual")
        serving = asyncio.create_task(service.serve())
        (job,) = service.verify_scheduler.jobs
        job.run()  # due while the run is in flight
        assert service.run_in_progress
        for _ in range(3000):
            if service.last_verify is not None:
                break
            await asyncio.sleep(0.01)
        report = await service.wait_for_run()
        await service.stop()
        await serving

        answer = service.last_verify
        assert answer is not None and answer.trigger == "schedule" and answer.in_sync
        assert report is not None and report.outcome == "succeeded"
        assert datetime.fromisoformat(answer.finished_at) >= report.finished_at.replace(
            microsecond=0
        )
        assert runs == [False]  # the verify's VerifyFinished came with no run in flight


def test_an_interval_of_zero_schedules_no_verify(make_settings: Any, state_factory: Any) -> None:
    settings = make_settings(verify={"interval_hours": 0})
    service = ExportService(settings, make_engine(settings, state_factory(settings)))
    assert service.verify_scheduler.jobs == []
    assert service.next_run is None  # the run's schedule is the run's alone


# --- any drift ------------------------------------------------------------------------------


Drifts = st.lists(
    st.one_of(
        st.just(("deleted", "")),
        st.tuples(st.just("changed"), st.sampled_from(CHANGED_FIELDS)),
        st.just(("none", "")),
    ),
    min_size=8,
    max_size=8,
)


@pytest.mark.parametrize("name", PLATFORMS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drifts=Drifts, extras=st.integers(0, 3))
async def test_verify_names_exactly_any_drift_and_a_repair_leaves_none(
    name: str, drifts: list[tuple[str, str]], extras: int
) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        drift_platform(name, Path(folder)) as platform,
    ):
        path = write_settings(Path(folder), platform.overrides())
        configured = load_settings(path)
        state = StateStore(configured.state_database_path)
        try:
            service, docs = await exported_copy(configured, state, FakeClock(), 12)
            expected: set[DriftItem] = set()
            for doc, (kind, field) in zip(docs, drifts, strict=False):
                if kind == "deleted":
                    platform.delete(doc)
                    expected.add(DriftItem(doc["order_id"], "missing"))
                elif kind == "changed":
                    held, value = changed(doc, field)
                    platform.hold(held)
                    erp = erp_value(doc, field)
                    expected.add(DriftItem(doc["order_id"], "different", field, value, erp))
            for number in range(extras):
                platform.hold(extra_order(docs[0], f"ZZ-EXTRA-{number}"))
                expected.add(DriftItem(f"ZZ-EXTRA-{number}", "extra"))
            written = platform.writes()

            found = await service.verify()

            assert set(found.drift) == expected
            assert len(found.drift) == len(expected)
            assert found.in_sync == (not expected)
            assert platform.writes() == written
            fixed = await service.verify(repair=True)
            assert fixed.in_sync, fixed.drift_lines()
            assert set(fixed.repaired) == {item.order_id for item in expected}
            again = await service.verify()
            assert again.in_sync and again.drift == ()
            assert platform.problems() == []
        finally:
            state.close()


# --- the control socket's POST /verify --------------------------------------------------------

Bodies = st.one_of(
    st.dictionaries(
        st.sampled_from(["since", "repair", "other"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**53), 2**53),
            st.text(max_size=12),
            st.dates().map(lambda day: day.isoformat()),
            st.lists(st.integers(0, 9), max_size=2),
        ),
    ),
    st.lists(st.integers(0, 9), max_size=2),
    st.text(max_size=8),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=Bodies)
async def test_post_verify_answers_any_body_with_a_verify_or_a_400(body: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        configured = load_settings(write_settings(Path(folder), {"destination": {"app": "file"}}))
        demo(configured, orders=5, malformed=1, days=5)
        state = StateStore(configured.state_database_path)
        try:
            service = ExportService(configured, make_engine(configured, state, FakeClock()))
            control = HostedControl(service, state, role="tui", since="now")
            server = ControlServer(control, Path(folder) / "control.sock")
            transport = httpx.ASGITransport(app=server.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
                answer = await client.post("/verify", content=orjson.dumps(body))
        finally:
            state.close()
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["error"]
        return
    assert isinstance(body, dict)
    verified = decode(answer.json(), VerifyAnswer)
    assert verified.started and verified.error is None
    assert body.get("repair", False) in (True, False)
