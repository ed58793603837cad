"""Real-time delivery that must not die: a broken ERP during a lookup, a reload that switches
the destination, old payloads that must go. Real uvicorn, real SQLite files, real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import tomli_w

from order_export_tui.destinations.file.connector import file_path
from order_export_tui.engine.runner import local_now
from order_export_tui.service.delivery import RealtimeDelivery
from order_export_tui.service.events import DELIVERY_FAILING, DELIVERY_OK, DeliveryStateChanged
from order_export_tui.service.export_service import SettingsApplied
from order_export_tui.service.intake import signature_for
from order_export_tui.settings import load_settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import (
    DELIVERED,
    HELD,
    ORDER_COMPLETED,
    SKIPPED,
    WEBHOOK_PAYLOAD_RETENTION_DAYS,
    StateStore,
)
from tests.conftest import TEST_SETTINGS, _merge, write_settings
from tests.fakes.dotdigital import FakeDotdigital
from tests.support.daemon_process import DaemonProcess
from tests.support.intake_server import Channel, running_channel
from tests.support.loopback_destination import LoopbackDestination
from tests.support.orders import order
from tests.support.ports import free_port

SECRET = "webhook-secret-for-tests"


def payment(order_id: str, status: str) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "payment_status": status,
        "occurred_at": "2026-11-27T10:25:00+00:00",
    }


# The service with its webhook intake on loopback, the demo ERP and a loopback platform.
Running = Channel


@pytest.fixture
async def running(make_settings, loopback) -> AsyncIterator[Running]:  # type: ignore[no-untyped-def]
    async with running_channel(make_settings, loopback, demo_orders=30) as channel:
        yield channel


# --- item 3: a source error during a lookup ---------------------------------------------------


async def test_a_broken_erp_during_a_lookup_makes_the_event_wait_and_health_say_so(
    running: Running,
) -> None:
    changes: list[DeliveryStateChanged] = []
    running.service.subscribe(
        lambda event: changes.append(event) if isinstance(event, DeliveryStateChanged) else None
    )
    report = await running.service.engine.run()
    assert report.outcome == "succeeded"
    with sqlite3.connect(running.settings.state_database_path) as db:
        (exported_id,) = db.execute("SELECT order_id FROM exported_order LIMIT 1").fetchone()
    erp = demo_database_path(running.settings)
    good = erp.read_bytes()
    erp.write_bytes(os.urandom(60000))  # the demo ERP replaced by garbage

    answer = await running.post("/webhooks/payment-status", payment(exported_id, "refunded"))
    assert answer.status_code == 202
    await running.until(lambda: any(change.state == DELIVERY_FAILING for change in changes))

    health = await running.client.get("/healthz")
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "unhealthy"
    assert body["delivery"]["state"] == DELIVERY_FAILING
    assert "last_error" not in body["delivery"]  # no error text where anyone may read it
    assert f"cannot read the ERP for {exported_id}" in (
        running.service.realtime.delivery.last_error or ""
    )
    assert body["problems"] and "real-time delivery is failing" in body["problems"][0]

    # Delivery goes on for the others while that event waits.
    assert (await running.post("/webhooks/order-completed", order("SO-NEW-1"))).status_code == 202
    await running.until(lambda: "SO-NEW-1" in running.store.orders)
    await running.until(lambda: running.state.event_counts().get(DELIVERED) == 1)
    assert running.state.event_counts().get("queued") == 1  # the payment, waiting

    erp.write_bytes(good)  # the ERP is back: the waiting event goes out
    await running.until(lambda: (exported_id, "refunded") in running.store.received, timeout=30)
    await running.until(lambda: changes[-1].state == DELIVERY_OK)
    health = await running.client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["delivery"]["state"] == DELIVERY_OK


# --- item 5: a reload is applied everywhere, or named as needing a restart ---------------------


async def test_apply_settings_names_the_keys_that_need_a_restart(running: Running) -> None:
    applied: list[SettingsApplied] = []
    running.service.subscribe(
        lambda event: applied.append(event) if isinstance(event, SettingsApplied) else None
    )
    data = _merge(
        TEST_SETTINGS,
        {"webhook": {"enabled": False, "listen": running.settings.webhook.listen}},
    )
    running.settings.path.write_bytes(tomli_w.dumps(data).encode())
    restart = running.service.apply_settings(load_settings(running.settings.path))

    assert restart == ["webhook.enabled"]
    assert applied[-1].restart_needed == ("webhook.enabled",)


def test_sighup_switching_to_dotdigital_moves_delivery_and_names_webhook_enabled(
    tmp_path: Path,
    daemons: list[DaemonProcess],
) -> None:
    port = free_port()
    webhook = {"enabled": True, "listen": f"127.0.0.1:{port}"}
    settings_file = write_settings(tmp_path, {"webhook": webhook})
    env = {"ORDER_EXPORT_WEBHOOK_SECRET": SECRET, "DOTDIGITAL_API_PASSWORD": "dd-pass"}
    with FakeDotdigital("dd-user", "dd-pass") as fake:
        daemon = DaemonProcess(tmp_path, env)
        daemons.append(daemon)
        daemon.wait_started()
        daemon.wait_for(lambda text: "webhook intake listening" in text)

        def post(doc: dict[str, object]) -> int:
            body = orjson.dumps(doc)
            return httpx.post(
                f"http://127.0.0.1:{port}/webhooks/order-completed",
                content=body,
                headers={"X-Signature": signature_for(SECRET, body)},
                timeout=10,
            ).status_code

        assert post(order("SO-FILE-1")) == 202
        daemon.wait_for(lambda text: "for SO-FILE-1) delivered" in text)

        data = _merge(
            TEST_SETTINGS,
            {
                "destination": {"app": "dotdigital"},
                "dotdigital": {
                    "base_url": fake.url,
                    "api_user": "dd-user",
                    "password_env": "DOTDIGITAL_API_PASSWORD",
                },
                "webhook": {**webhook, "enabled": False},
            },
        )
        settings_file.write_bytes(tomli_w.dumps(data).encode())
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda text: "needs a restart to take effect: webhook.enabled" in text)

        assert post(order("SO-DD-1")) == 202  # still served until the restart, as logged
        daemon.wait_for(
            lambda text: "SO-DD-1 delivered" in text or "for SO-DD-1) delivered" in text
        )
        assert "SO-DD-1" in fake.records("Orders")
        assert fake.invalid_requests == []
        assert daemon.stop() == 0
    dry_run = (tmp_path / "exports" / "orders.jsonl").read_text()
    assert "SO-FILE-1" in dry_run
    assert "SO-DD-1" not in dry_run


# --- item 13: webhook payloads are pruned once delivered ---------------------------------------


async def test_payloads_of_events_finished_over_the_retention_ago_are_blanked(
    make_settings,  # type: ignore[no-untyped-def]
    loopback,  # type: ignore[no-untyped-def]
) -> None:
    server, _ = loopback
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=5, seed=1, days=5, malformed=0)
    now = local_now()
    old = now - timedelta(days=WEBHOOK_PAYLOAD_RETENTION_DAYS, hours=1)
    recent = now - timedelta(days=WEBHOOK_PAYLOAD_RETENTION_DAYS - 1)
    state = StateStore(settings.state_database_path)
    ids: dict[str, int] = {}
    for name, status, finished in [
        ("old-delivered", DELIVERED, old),
        ("old-skipped", SKIPPED, old),
        ("recent-delivered", DELIVERED, recent),
        ("old-held", HELD, old),
    ]:
        event_id, _ = state.enqueue_event(
            kind=ORDER_COMPLETED,
            order_id=name,
            payload=orjson.dumps(order(name)),
            dedupe_key=name,
            now=finished,
        )
        state.finish_event(event_id, status=status, now=finished)
        ids[name] = event_id
    delivery = RealtimeDelivery(
        settings,
        state,
        lambda s: LoopbackDestination(server.url),
        emit=lambda event: None,
        clock=local_now,
    )
    running_delivery = asyncio.create_task(delivery.run())
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while _payload(settings.state_database_path, ids["old-delivered"]):
            assert asyncio.get_running_loop().time() < deadline, "never pruned"
            await asyncio.sleep(0.02)
    finally:
        delivery.stop()
        await running_delivery
    path = settings.state_database_path
    assert _payload(path, ids["old-skipped"]) == b""
    assert _payload(path, ids["recent-delivered"]) != b""
    assert _payload(path, ids["old-held"]) != b""  # still needed until its order arrives
    # The row stays: a repeat of a pruned event is still recognised as one.
    again, first = state.enqueue_event(
        kind=ORDER_COMPLETED,
        order_id="old-delivered",
        payload=b"{}",
        dedupe_key="old-delivered",
        now=now,
    )
    state.close()
    assert (again, first) == (ids["old-delivered"], False)


def _payload(database: Path, event_id: int) -> bytes:
    with sqlite3.connect(database) as db:
        (payload,) = db.execute(
            "SELECT payload FROM realtime_event WHERE event_id = ?", (event_id,)
        ).fetchone()
    return bytes(payload)


async def test_a_destination_that_cannot_be_opened_is_failing_then_delivery_resumes(
    make_settings,  # type: ignore[no-untyped-def]
) -> None:
    """The dry-run file's folder is a file: delivery does not die, it says so and waits."""
    from order_export_tui.service.wiring import build_destination

    settings = make_settings(file={"path": "blocked/orders.jsonl"})
    blocker = file_path(settings).parent
    blocker.write_text("a file where the export folder should be")
    state = StateStore(settings.state_database_path)
    changes: list[DeliveryStateChanged] = []
    delivery = RealtimeDelivery(
        settings,
        state,
        build_destination,
        emit=lambda event: (
            changes.append(event) if isinstance(event, DeliveryStateChanged) else None
        ),
        clock=local_now,
        outage_backoff=(0.05, 0.1),
    )
    event_id, _ = state.enqueue_event(
        kind=ORDER_COMPLETED,
        order_id="SO-OPEN-1",
        payload=orjson.dumps(order("SO-OPEN-1")),
        dedupe_key="SO-OPEN-1",
        now=local_now(),
    )
    task = asyncio.create_task(delivery.run())
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while delivery.delivery_state != DELIVERY_FAILING:
            assert asyncio.get_running_loop().time() < deadline, "never said failing"
            await asyncio.sleep(0.02)
        assert "cannot open the destination file" in (delivery.last_error or "")
        assert not task.done()

        blocker.unlink()  # the operator fixes it
        while state.event_counts().get(DELIVERED) != 1:
            assert asyncio.get_running_loop().time() < deadline + 10, "never delivered"
            await asyncio.sleep(0.02)
    finally:
        delivery.stop()
        await task
        state.close()
    assert delivery.delivery_state == DELIVERY_OK
    assert [change.state for change in changes] == [DELIVERY_FAILING, DELIVERY_OK]
    assert "SO-OPEN-1" in file_path(settings).read_text()
    assert event_id == 1
