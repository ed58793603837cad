"""A dashboard that hosts the webhook intake over a scripted file destination, and the day of
real-time traffic the real-time screen's tests and snapshots show: one event in each state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from order_export_tui.engine.runner import ExportEngine, local_now
from order_export_tui.service.export_service import ExportService, RealtimeChannel
from order_export_tui.service.hosted import HostedControl
from order_export_tui.service.wiring import build_source
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import DemoErpSource
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from order_export_tui.tui import OrderExportApp
from tests.support.scripted_destinations import ScriptedDestination
from tests.support.webstore import SECRET, Webstore, payment

UNKNOWN_ORDER = "SO-999999"


@dataclass
class RealtimeDashboard:
    app: OrderExportApp
    settings: Settings
    state: StateStore
    intake_state: StateStore
    refuse: set[str]
    fail: set[str]

    def close(self) -> None:
        self.intake_state.close()

    def counts(self) -> dict[str, int]:
        return self.state.event_counts()


def realtime_dashboard(
    settings: Settings,
    state: StateStore,
    *,
    clock: Callable[[], datetime] = local_now,
    monotonic: Callable[[], float] | None = None,
) -> RealtimeDashboard:
    """The dashboard as `order-export tui` builds it with webhook.enabled, except that the
    destination refuses the orders in `refuse` and fails for those in `fail` (both filled in
    by `post_one_of_each`)."""
    refuse: set[str] = set()
    fail: set[str] = set()

    def destination(s: Settings) -> ScriptedDestination:
        return ScriptedDestination(s, refuse=refuse, fail=fail)

    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=destination, clock=clock
    )
    intake_state = StateStore(settings.state_database_path, durable=True)
    channel = RealtimeChannel(
        settings,
        state=state,
        intake_state=intake_state,
        destination_factory=destination,
        source_factory=build_source,
        secret=SECRET,
        clock=clock,
        outage_backoff=(30.0,),  # a failed event waits visibly, not retried during the test
    )
    service = ExportService(settings, engine, realtime=channel, clock=clock)
    control = HostedControl(service, state, role="tui", since=clock().isoformat())
    extra: dict[str, Any] = {} if monotonic is None else {"monotonic": monotonic}
    app = OrderExportApp(settings, control=control, clock=clock, **extra)
    return RealtimeDashboard(app, settings, state, intake_state, refuse, fail)


async def post_one_of_each(dashboard: RealtimeDashboard, timeout: float = 20.0) -> list[str]:
    """Post six events, each once the one before is settled (so their order is fixed): an
    order delivered, one refused (skipped), a payment applied (delivered), an older payment
    (superseded), a payment for an unknown order (held) and an order the destination fails
    for (waiting). Returns the three orders' ids: delivered, refused, failing."""
    source = DemoErpSource(demo_database_path(dashboard.settings))
    try:
        batch = await anext(source.iter_orders(datetime(2000, 1, 1, tzinfo=UTC)))
    finally:
        await source.close()
    delivered, refused, failing = batch[:3]
    dashboard.refuse.add(refused["order_id"])
    dashboard.fail.add(failing["order_id"])
    settled = 0

    def settled_as(expected: str) -> bool:
        counts = dashboard.counts()
        if sum(counts.values()) < settled:
            return False
        if expected == "queued":  # settled once its first attempt has failed
            return dashboard.state.recent_events(1)[0].attempts > 0
        return not counts.get("queued", 0)

    async def settle(expected: str) -> None:
        nonlocal settled
        settled += 1
        deadline = asyncio.get_running_loop().time() + timeout
        while not settled_as(expected):
            assert asyncio.get_running_loop().time() < deadline, f"event {settled} unsettled"
            await asyncio.sleep(0.02)

    port = dashboard.settings.webhook.listen.rsplit(":", 1)[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        webstore = Webstore(client)
        deadline = asyncio.get_running_loop().time() + timeout
        while not dashboard.app.control.service.realtime.listening:  # type: ignore[attr-defined]
            assert asyncio.get_running_loop().time() < deadline, "the intake did not start"
            await asyncio.sleep(0.02)
        paid = payment(delivered["order_id"], "paid", "2026-11-27T08:30:00+00:00")
        older = payment(delivered["order_id"], "pending", "2026-11-27T08:10:00+00:00")
        steps: list[tuple[Callable[[], Awaitable[httpx.Response]], str]] = [
            (lambda: webstore.order_completed(delivered), "delivered"),
            (lambda: webstore.order_completed(refused), "skipped"),
            (lambda: webstore.payment_status(paid), "delivered"),
            (lambda: webstore.payment_status(older), "superseded"),
            (lambda: webstore.payment_status(payment(UNKNOWN_ORDER, "paid")), "held"),
            (lambda: webstore.order_completed(failing), "queued"),
        ]
        for post, expected in steps:
            answer = await post()
            assert answer.status_code == 202, answer.text
            await settle(expected)
    return [delivered["order_id"], refused["order_id"], failing["order_id"]]
