"""The real-time intake as the dashboard hosts and shows it (webhook.enabled)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from order_export_tui.service.export_service import assemble_service
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.tui import OrderExportApp
from tests.support.ports import free_port
from tests.support.webstore import SECRET, payment, post_to_intake
from tests.tui.conftest import hosted_control, screen_text, wait_until


async def test_the_dashboard_hosts_the_intake_and_counts_what_it_delivers(
    make_settings, state_factory, monkeypatch
) -> None:
    monkeypatch.setenv("ORDER_EXPORT_WEBHOOK_SECRET", SECRET)
    port = free_port()
    settings = make_settings(webhook={"enabled": True, "listen": f"127.0.0.1:{port}"})
    generate_demo_erp(demo_database_path(settings), orders=5, seed=2, days=5, malformed=0)
    source = DemoErpSource(demo_database_path(settings))
    order = (await anext(source.iter_orders(datetime(2000, 1, 1, tzinfo=UTC))))[0]
    await source.close()

    state = state_factory(settings)
    service, intake_state = assemble_service(settings, state)
    app = OrderExportApp(settings, control=hosted_control(service, state))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: f"listening on 127.0.0.1:{port}" in screen_text(app))
            answer = await post_to_intake(port, "/webhooks/order-completed", order)
            assert answer.status_code == 202
            await wait_until(
                pilot,
                lambda: re.search(r"delivered\s+1\b", screen_text(app)) is not None,
                what="the delivered counter",
            )
    finally:
        if intake_state is not None:
            intake_state.close()


async def test_the_dashboard_says_when_real_time_delivery_fails_and_works_again(
    make_settings, state_factory, monkeypatch
) -> None:
    """A payment for an exported order while the demo ERP file is garbage (issue 14, item 3)."""
    import os
    import sqlite3

    monkeypatch.setenv("ORDER_EXPORT_WEBHOOK_SECRET", SECRET)
    port = free_port()
    settings = make_settings(webhook={"enabled": True, "listen": f"127.0.0.1:{port}"})
    generate_demo_erp(demo_database_path(settings), orders=5, seed=2, days=5, malformed=0)
    state = state_factory(settings)
    service, intake_state = assemble_service(settings, state)
    service.realtime.delivery._outage_backoff = (0.05, 0.1)  # type: ignore[union-attr]
    app = OrderExportApp(settings, control=hosted_control(service, state))

    def notes() -> list[str]:
        return [note.message for note in app._notifications]

    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: f"listening on 127.0.0.1:{port}" in screen_text(app))
            assert (await service.engine.run()).outcome == "succeeded"
            with sqlite3.connect(settings.state_database_path) as db:
                (order_id,) = db.execute("SELECT order_id FROM exported_order LIMIT 1").fetchone()
            good = demo_database_path(settings).read_bytes()
            demo_database_path(settings).write_bytes(os.urandom(40000))
            refunded = payment(order_id, "refunded", "2026-11-27T10:25:00+00:00")
            answer = await post_to_intake(port, "/webhooks/payment-status", refunded)
            assert answer.status_code == 202
            await wait_until(
                pilot,
                lambda: any("Real-time delivery is failing" in note for note in notes()),
                what="the failing notice",
            )
            assert any(f"cannot read the ERP for {order_id}" in note for note in notes())
            demo_database_path(settings).write_bytes(good)
            await wait_until(
                pilot,
                lambda: any("Real-time delivery works again" in note for note in notes()),
                what="the recovered notice",
            )
    finally:
        if intake_state is not None:
            intake_state.close()


async def test_a_held_payment_status_shows_as_held_not_queued(
    make_settings, state_factory, monkeypatch
) -> None:
    monkeypatch.setenv("ORDER_EXPORT_WEBHOOK_SECRET", SECRET)
    port = free_port()
    settings = make_settings(webhook={"enabled": True, "listen": f"127.0.0.1:{port}"})
    generate_demo_erp(demo_database_path(settings), orders=5, seed=2, days=5, malformed=0)
    state = state_factory(settings)
    service, intake_state = assemble_service(settings, state)
    app = OrderExportApp(settings, control=hosted_control(service, state))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: f"listening on 127.0.0.1:{port}" in screen_text(app))
            # A payment status for an order nobody knows yet: accepted, held until it arrives.
            answer = await post_to_intake(
                port, "/webhooks/payment-status", payment("SO-NOT-YET", "paid")
            )
            assert answer.status_code == 202
            await wait_until(
                pilot,
                lambda: re.search(r"held\s+1\b", screen_text(app)) is not None,
                what="the held counter",
            )
            text = screen_text(app)
            assert re.search(r"queued\s+0\b", text), text
            assert f"listening on 127.0.0.1:{port}, 1 held" in text
            assert "1 queued" not in text
    finally:
        if intake_state is not None:
            intake_state.close()
