"""Monitoring on `monitoring.listen`: /metrics read back with prometheus_client's parser, and
/healthz telling the truth, served by a real uvicorn server on loopback (and by the daemon)."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.events import DELIVERY_FAILING, DELIVERY_OK, DeliveryStateChanged
from order_export_tui.service.export_service import ExportService, RealtimeChannel
from order_export_tui.service.intake import IntakeError
from order_export_tui.service.wiring import build_source
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import ORDER_COMPLETED, StateStore
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess as Daemon
from tests.support.fault_server import Fault, FaultServer
from tests.support.loopback_destination import LoopbackDestination, OrderStore
from tests.support.orders import order
from tests.support.ports import free_port
from tests.support.webstore import SECRET, Webstore

METRIC_NAMES = {
    "order_export_runs": "counter",
    "order_export_orders_sent": "counter",
    "order_export_retries": "counter",
    "order_export_skipped_orders": "gauge",
    "order_export_realtime_queue_depth": "gauge",
    "order_export_run_in_progress": "gauge",
    "order_export_last_success_timestamp_seconds": "gauge",
}


@dataclass
class Monitored:
    settings: Settings
    service: ExportService
    state: StateStore
    store: OrderStore
    server: FaultServer
    client: httpx.AsyncClient
    offset: list[timedelta]  # what the service's clock is ahead of the real one
    webstore: Webstore | None

    async def metrics(self) -> dict[str, Any]:
        """Sample name (with its labels) -> value, as Prometheus would read them."""
        answer = await self.client.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        samples: dict[str, Any] = {"_types": {}, "_text": answer.text}
        for family in text_string_to_metric_families(answer.text):
            samples["_types"][family.name] = family.type
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    async def health(self) -> tuple[int, dict[str, Any]]:
        answer = await self.client.get("/healthz")
        return answer.status_code, answer.json()


MonitoredFactory = Callable[..., Any]


@pytest.fixture
async def monitored(  # type: ignore[no-untyped-def]
    make_settings, loopback
) -> AsyncIterator[MonitoredFactory]:
    server, store = loopback
    stack: list[tuple[ExportService, asyncio.Task[None], list[StateStore], httpx.AsyncClient]] = []

    async def start(*, webhook: bool = False, **task: Any) -> Monitored:
        port = free_port()
        hook_port = free_port()
        settings = make_settings(
            monitoring={"listen": f"127.0.0.1:{port}"},
            webhook={"enabled": webhook, "listen": f"127.0.0.1:{hook_port}"},
            task={"max_retries": 3, "max_retry_interval_seconds": 5, **task},
        )
        generate_demo_erp(demo_database_path(settings), orders=30, seed=5, days=10, malformed=2)
        state = StateStore(settings.state_database_path)
        stores = [state]
        offset = [timedelta(0)]

        def destination(s: Settings) -> LoopbackDestination:
            return LoopbackDestination(server.url)

        def clock() -> datetime:
            return datetime.now().astimezone() + offset[0]

        engine = ExportEngine(
            settings, state, source_factory=build_source, destination_factory=destination
        )
        channel = None
        if webhook:
            intake_state = StateStore(settings.state_database_path, durable=True)
            stores.append(intake_state)
            channel = RealtimeChannel(
                settings,
                state=state,
                intake_state=intake_state,
                destination_factory=destination,
                source_factory=build_source,
                secret=SECRET,
            )

        async def no_email(settings: Settings, report: Any) -> None:
            return None

        service = ExportService(settings, engine, realtime=channel, notifier=no_email, clock=clock)
        serving = asyncio.create_task(service.serve())
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
        stack.append((service, serving, stores, client))
        for _ in range(500):
            if service._monitoring_server is not None and (channel is None or channel.listening):
                break
            await asyncio.sleep(0.01)
        webstore = None
        if webhook:
            hook = httpx.AsyncClient(base_url=f"http://127.0.0.1:{hook_port}", timeout=10)
            webstore = Webstore(hook)
        return Monitored(settings, service, state, store, server, client, offset, webstore)

    yield start
    for service, serving, stores, client in stack:
        await client.aclose()
        await service.stop()
        await serving
        for opened in stores:
            opened.close()


async def test_metrics_carry_the_names_of_section_6_and_count_what_the_fake_received(
    monitored: MonitoredFactory,
) -> None:
    m: Monitored = await monitored(webhook=True)
    before = await m.metrics()
    assert {name: before["_types"][name] for name in METRIC_NAMES} == METRIC_NAMES
    assert before["order_export_runs_total{outcome=succeeded}"] == 0
    assert before["order_export_last_success_timestamp_seconds"] == 0

    m.server.plan(Fault(status=503), Fault(status=503))  # two retries, then it answers
    report = await m.service.engine.run()
    assert m.webstore is not None
    await m.webstore.order_completed(order("SO-RT-1"))
    for _ in range(500):
        if m.state.event_counts().get("delivered") == 1:
            break
        await asyncio.sleep(0.02)
    after = await m.metrics()

    assert report.outcome == "succeeded"
    assert after["order_export_runs_total{outcome=succeeded}"] == 1
    assert after["order_export_runs_total{outcome=failed}"] == 0
    assert after["order_export_orders_sent_total"] == sum(m.store.writes.values()) == 29
    assert after["order_export_retries_total"] == report.counts["retried"] == 2
    assert after["order_export_skipped_orders"] == len(m.state.skipped_orders()) == 2
    assert after["order_export_realtime_queue_depth"] == 0
    assert after["order_export_run_in_progress"] == 0
    last = after["order_export_last_success_timestamp_seconds"]
    assert abs(last - report.finished_at.timestamp()) < 1
    text = after["_text"]
    for private in ("127.0.0.1", SECRET, "ORDER_EXPORT_WEBHOOK_SECRET", "@example", "_env"):
        assert private not in text


async def test_healthz_goes_503_when_a_run_fails_and_back_to_200_when_one_succeeds(
    monitored: MonitoredFactory,
) -> None:
    m: Monitored = await monitored(max_retries=1, max_retry_interval_seconds=1)
    status, body = await m.health()
    assert (status, body["status"], body["problems"]) == (200, "ok", [])

    m.server.plan(*[Fault(status=503) for _ in range(6)])
    failed = await m.service.engine.run()
    status, body = await m.health()

    assert failed.outcome == "failed"
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["problems"] == [
        f"the last run failed (run {failed.run_id}, finished {failed.finished_at.isoformat()});"
        " its log file has the error"
    ]
    assert m.server.url not in str(body) and "503" not in str(body)  # the error stays in the log

    m.server.fault_plan.clear()
    healed = await m.service.engine.run()
    status, body = await m.health()

    assert healed.outcome == "succeeded"
    assert (status, body["problems"]) == (200, [])


async def test_both_healthz_read_ok_once_a_real_time_outage_has_recovered(
    monitored: MonitoredFactory,
) -> None:
    m: Monitored = await monitored(webhook=True, max_retries=1, max_retry_interval_seconds=1)
    assert m.webstore is not None
    states: list[str] = []
    m.service.subscribe(
        lambda event: (
            states.append(event.state) if isinstance(event, DeliveryStateChanged) else None
        )
    )
    m.server.plan(*[Fault(status=503) for _ in range(4)])  # two attempts fail, then it answers

    assert (await m.webstore.order_completed(order("SO-OUT-1"))).status_code == 202
    await until(lambda: DELIVERY_FAILING in states, "the outage")
    during = (await m.webstore.client.get("/healthz")).json()
    assert during["destination"]["state"] == "failing"
    assert during["delivery"]["state"] == DELIVERY_FAILING

    await until(lambda: m.state.event_counts().get("delivered") == 1, "the delivery")
    await until(lambda: states[-1] == DELIVERY_OK, "the recovery")
    hook = await m.webstore.client.get("/healthz")
    status, body = await m.health()

    assert states == [DELIVERY_FAILING, DELIVERY_OK]
    assert hook.status_code == 200
    assert hook.json()["status"] == "ok" and hook.json()["problems"] == []
    assert hook.json()["destination"] == {"app": "file", "state": "ok"}
    assert hook.json()["delivery"]["state"] == DELIVERY_OK
    assert (status, body["status"], body["problems"]) == (200, "ok", [])


async def until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_healthz_is_503_while_a_real_time_event_has_waited_over_5_minutes(
    monitored: MonitoredFactory,
) -> None:
    m: Monitored = await monitored()  # no webhook: nothing delivers the event
    m.state.enqueue_event(
        kind=ORDER_COMPLETED,
        order_id="SO-Q",
        payload=orjson.dumps(order("SO-Q")),
        dedupe_key="test-q",
        now=datetime.now().astimezone(),
    )
    assert (await m.health())[0] == 200

    m.offset[0] = timedelta(minutes=6)
    status, body = await m.health()

    assert status == 503
    assert body["problems"] == ["the oldest queued real-time event has waited 6 minutes"]
    assert body["queue"] == {"queued": 1, "held": 0}
    assert (await m.metrics())["order_export_realtime_queue_depth"] == 1


async def test_healthz_is_503_when_a_due_scheduled_run_has_not_started(
    monitored: MonitoredFactory,
) -> None:
    m: Monitored = await monitored(run_on_schedule=True, run_interval_minutes=60)
    assert (await m.health())[0] == 200
    due = m.service.next_run
    assert due is not None

    m.offset[0] = timedelta(minutes=60 + 6)  # the scheduler loop has not fired it
    status, body = await m.health()

    assert status == 503
    assert body["problems"] == [
        f"the scheduled run due at {due.isoformat(timespec='seconds')} has not started"
    ]


async def test_monitoring_that_cannot_listen_stops_the_service_from_starting(
    make_settings: Callable[..., Settings], state_factory: Callable[[Settings], StateStore]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(monitoring={"listen": f"127.0.0.1:{port}"})
        engine = ExportEngine(
            settings,
            state_factory(settings),
            source_factory=build_source,
            destination_factory=lambda s: LoopbackDestination("http://127.0.0.1:9"),
        )
        service = ExportService(settings, engine)

        with pytest.raises(IntakeError, match=f"monitoring cannot listen on 127.0.0.1:{port}"):
            await asyncio.wait_for(service.serve(), 10)


def test_the_daemon_serves_monitoring_without_the_webhook(tmp_path: Path) -> None:
    port = free_port()
    write_settings(tmp_path, {"monitoring": {"listen": f"127.0.0.1:{port}"}})
    daemon = Daemon(tmp_path)
    try:
        daemon.wait_for(lambda text: "monitoring listening on" in text)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        daemon.signal(signal.SIGTERM)
        code = daemon.stop()
    assert code == 0, daemon.output
    assert health.status_code == 200 and health.json()["status"] == "ok"
    names = {family.name for family in text_string_to_metric_families(metrics.text)}
    assert set(METRIC_NAMES) <= names
