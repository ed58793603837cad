"""What a running daemon's real-time delivery says reaches an attached client over the real
control socket, the service's own events included, and the daemon's log stays quiet."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from order_export_tui.service.control import Event
from order_export_tui.service.control_client import AttachedControl
from order_export_tui.service.events import EventDelivered, EventSuperseded
from order_export_tui.settings import load_settings
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, free_port
from tests.support.orders import order
from tests.support.webstore import SECRET, payment, post_to_intake

ORDER_PATH = "/webhooks/order-completed"
PAYMENT_PATH = "/webhooks/payment-status"
SECRET_ENV = "OE_TEST_WEBHOOK_SECRET"


async def until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_superseded_payment_callback_reaches_an_attached_client_without_a_traceback(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    port = free_port()
    write_settings(
        tmp_path,
        {"webhook": {"enabled": True, "listen": f"127.0.0.1:{port}", "secret_env": SECRET_ENV}},
    )
    daemon = DaemonProcess(tmp_path, {SECRET_ENV: SECRET})
    daemons.append(daemon)
    await asyncio.to_thread(daemon.wait_for, lambda text: "webhook intake listening" in text)

    control = AttachedControl(load_settings(tmp_path / "settings.toml").control_socket_path)
    events: list[Event] = []
    control.subscribe(events.append)
    following = asyncio.create_task(control.serve())
    try:
        await until(lambda: control.connected, "the event stream")
        assert (await post_to_intake(port, ORDER_PATH, order("SO-S1"))).status_code == 202
        newer = payment("SO-S1", "refunded", "2026-11-27T10:30:00+00:00")
        assert (await post_to_intake(port, PAYMENT_PATH, newer)).status_code == 202
        await until(
            lambda: sum(isinstance(event, EventDelivered) for event in events) == 2,
            "the order and the refund delivered",
        )

        older = await post_to_intake(
            port, PAYMENT_PATH, payment("SO-S1", "paid", "2026-11-27T10:25:00+00:00")
        )
        assert older.status_code == 202
        await until(
            lambda: any(isinstance(event, EventSuperseded) for event in events),
            "EventSuperseded on the attached client",
        )
    finally:
        await control.stop()
        await following

    superseded = [event for event in events if isinstance(event, EventSuperseded)]
    assert superseded == [EventSuperseded(older.json()["event_id"], "SO-S1")]
    assert daemon.stop() == 0
    output = daemon.output
    assert "is older than the payment status applied" in output
    assert "Traceback" not in output
    assert "WireError" not in output and "does not travel" not in output
