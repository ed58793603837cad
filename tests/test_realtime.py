"""The real-time intake and delivery: a real uvicorn server on loopback, real HTTP clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import httpx
import orjson
import pytest

from order_export_tui.service.export_service import ExportService
from order_export_tui.service.intake import signature_for
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import DemoErpSource
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from tests.support.fault_server import Fault, FaultServer
from tests.support.intake_server import running_channel
from tests.support.loopback_destination import OrderStore
from tests.support.orders import order
from tests.support.webstore import SECRET, Webstore, payment


@dataclass
class Running:
    settings: Settings
    service: ExportService
    state: StateStore
    store: OrderStore
    server: FaultServer
    webstore: Webstore

    async def until(self, condition: Any, timeout: float = 15) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.02)


@pytest.fixture
async def running(make_settings, loopback) -> AsyncIterator[Running]:  # type: ignore[no-untyped-def]
    async with running_channel(make_settings, loopback, demo_orders=30) as channel:
        yield Running(
            channel.settings,
            channel.service,
            channel.state,
            channel.store,
            channel.server,
            Webstore(channel.client),
        )


async def test_a_signed_order_reaches_the_destination(running: Running) -> None:
    answer = await running.webstore.order_completed(order("SO-1"))

    assert answer.status_code == 202
    assert isinstance(answer.json()["event_id"], int)
    await running.until(lambda: "SO-1" in running.store.orders)
    assert running.store.orders["SO-1"]["customer"]["email"] == "jane@example.com"
    await running.until(lambda: running.state.event_counts().get("delivered") == 1)
    assert running.state.exported_orders(["SO-1"])["SO-1"].payment_status == "pending"


async def test_the_optional_fields_of_a_webhook_order_reach_the_destination(
    running: Running,
) -> None:
    line = {
        **order("SO-7")["lines"][0],
        "product_url": "https://shop.example.com/products/hat",
        "image_url": "https://shop.example.com/media/hat.jpg",
        "categories": ["Accessories"],
    }
    doc = order(
        "SO-7",
        coupon_code="WELCOME10",
        campaign_id="a1b2c3d4e5",
        landing_site="https://shop.example.com/?utm_campaign=autumn",
        lines=[line],
    )

    assert (await running.webstore.order_completed(doc)).status_code == 202

    await running.until(lambda: "SO-7" in running.store.orders)
    sent = running.store.orders["SO-7"]
    assert (sent["coupon_code"], sent["campaign_id"]) == ("WELCOME10", "a1b2c3d4e5")
    assert sent["landing_site"] == doc["landing_site"]
    assert sent["lines"][0]["image_url"] == line["image_url"]
    assert sent["lines"][0]["categories"] == ["Accessories"]


async def test_a_payment_callback_updates_the_status(running: Running) -> None:
    await running.webstore.order_completed(order("SO-2"))
    await running.until(lambda: "SO-2" in running.store.orders)

    answer = await running.webstore.payment_status(payment("SO-2", "paid"))

    assert answer.status_code == 202
    await running.until(lambda: running.store.orders["SO-2"]["payment_status"] == "paid")
    assert running.store.received == [("SO-2", "pending"), ("SO-2", "paid")]


async def test_a_payment_for_an_unknown_order_is_held_until_the_order_arrives(
    running: Running,
) -> None:
    assert (await running.webstore.payment_status(payment("SO-3", "paid"))).status_code == 202
    await running.until(lambda: running.state.event_counts().get("held") == 1)
    assert "SO-3" not in running.store.orders

    await running.webstore.order_completed(order("SO-3"))  # the webstore says "pending"

    await running.until(lambda: "SO-3" in running.store.orders)
    assert running.store.orders["SO-3"]["payment_status"] == "paid"  # the callback wins
    await running.until(lambda: running.state.event_counts().get("held") is None)


@pytest.mark.parametrize(
    ("secret", "signed"), [("wrong-secret", True), (SECRET, False)], ids=["wrong", "missing"]
)
async def test_a_bad_signature_gets_401_and_nothing_is_stored(
    running: Running, secret: str, signed: bool
) -> None:
    body = orjson.dumps(order("SO-4"))
    headers = {"X-Signature": signature_for(secret, body)} if signed else {}

    answer = await running.webstore.client.post(
        "/webhooks/order-completed", content=body, headers=headers
    )

    assert answer.status_code == 401
    assert running.state.event_counts() == {}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (orjson.dumps(order("SO-5", lines=[])), "order has no lines"),
        (orjson.dumps({**order("SO-5"), "customer": {"id": "C-1"}}), "customer.email is missing"),
        (orjson.dumps(order("SO-5", coupon_code=5)), "coupon_code must be a string"),
        (
            orjson.dumps(order("SO-5", landing_site="javascript:alert(1)")),
            "landing_site must be an http(s) URL",
        ),
    ],
)
async def test_invalid_json_or_an_invalid_order_gets_400_with_the_reason(
    running: Running, raw: bytes, reason: str
) -> None:
    answer = await running.webstore.post("/webhooks/order-completed", None, raw=raw)

    assert answer.status_code == 400
    assert reason in answer.json()["error"]
    assert running.state.event_counts() == {}


async def test_an_invalid_payment_status_gets_400(running: Running) -> None:
    answer = await running.webstore.payment_status(payment("SO-6", "lost"))
    assert answer.status_code == 400
    assert "payment_status 'lost'" in answer.json()["error"]


async def test_a_2_mib_body_gets_413_and_nothing_is_stored(running: Running) -> None:
    raw = b'{"padding": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    try:
        answer = await running.webstore.post("/webhooks/order-completed", None, raw=raw)
        assert answer.status_code == 413
    except httpx.WriteError:
        pass  # the server answered 413 and closed before the client finished writing
    assert running.state.event_counts() == {}


async def test_the_same_event_twice_has_one_effect(running: Running) -> None:
    first = await running.webstore.order_completed(order("SO-7"))
    again = await running.webstore.post(
        "/webhooks/order-completed",
        None,
        raw=orjson.dumps(order("SO-7"), option=orjson.OPT_INDENT_2),
    )

    assert first.status_code == again.status_code == 202
    assert first.json()["event_id"] == again.json()["event_id"]
    await running.until(lambda: running.state.event_counts().get("delivered") == 1)
    await asyncio.sleep(0.2)
    assert running.store.writes == {"SO-7": 1}


async def test_200_events_from_8_concurrent_senders_all_arrive_exactly_once(
    running: Running,
) -> None:
    async def sender(n: int) -> list[int]:
        ids = []
        for i in range(25):
            answer = await running.webstore.order_completed(order(f"SO-{n}-{i}"))
            assert answer.status_code == 202
            ids.append(answer.json()["event_id"])
        return ids

    event_ids = [i for ids in await asyncio.gather(*(sender(n) for n in range(8))) for i in ids]

    assert len(set(event_ids)) == 200
    await running.until(lambda: running.state.event_counts().get("delivered") == 200, 60)
    assert len(running.store.orders) == 200
    assert set(running.store.writes.values()) == {1}


async def test_a_destination_that_is_down_then_back_gets_every_event_in_order(
    running: Running,
) -> None:
    running.server.plan(*[Fault(status=503) for _ in range(8)], Fault(drop=True))
    for n in range(5):
        await running.webstore.order_completed(order(f"SO-D{n}"))
    await running.webstore.payment_status(payment("SO-D0", "paid"))

    await running.until(lambda: running.state.event_counts().get("delivered") == 6, 60)

    assert sorted(set(running.store.received)) == sorted(
        [(f"SO-D{n}", "pending") for n in range(5)] + [("SO-D0", "paid")]
    )
    # An order's events arrive in the order they were accepted.
    assert [s for order_id, s in running.store.received if order_id == "SO-D0"][-2:] == [
        "pending",
        "paid",
    ]
    assert running.store.orders["SO-D0"]["payment_status"] == "paid"


async def test_an_order_sent_in_real_time_is_not_sent_again_by_the_next_run(
    running: Running,
) -> None:
    report = await running.service.engine.run()  # the demo ERP's orders
    source = DemoErpSource(demo_database_path(running.settings))
    doc = await source.fetch_order(sorted(running.store.orders)[0])
    await source.close()
    assert doc is not None
    writes = dict(running.store.writes)

    await running.webstore.order_completed(doc)  # the webstore sends what the ERP has
    await running.until(lambda: running.state.event_counts().get("delivered") == 1)
    again = await running.service.engine.run()

    assert report.counts["new"] == 30
    assert again.counts["new"] == again.counts["updated"] == 0
    assert running.store.writes == writes  # neither the event nor the run sent it again


async def test_a_payment_callback_for_an_order_a_run_exported_goes_out_at_once(
    running: Running,
) -> None:
    await running.service.engine.run()  # exports the demo ERP's orders
    order_id = sorted(running.store.orders)[0]
    before = running.store.orders[order_id]
    status = "refunded" if before["payment_status"] != "refunded" else "paid"

    answer = await running.webstore.payment_status(payment(order_id, status))

    assert answer.status_code == 202
    await running.until(lambda: running.store.orders[order_id]["payment_status"] == status)
    assert {**running.store.orders[order_id], "payment_status": before["payment_status"]} == before
    again = await running.service.engine.run()  # the ERP still says the old status
    assert again.counts["updated"] == 0  # the callback's status stands
    assert running.store.orders[order_id]["payment_status"] == status


async def test_healthz_reports_scheduler_intake_and_destination(running: Running) -> None:
    await running.webstore.order_completed(order("SO-H"))
    await running.until(lambda: running.state.event_counts().get("delivered") == 1)

    health = (await running.webstore.client.get("/healthz")).json()

    assert health["status"] == "ok"
    assert health["scheduler"]["schedule"] == "manual only"
    assert health["intake"]["delivered"] == 1
    assert health["destination"]["app"] == "file"


async def test_an_event_a_stopped_process_began_sending_is_counted_as_a_resend(
    running: Running,
) -> None:
    from datetime import datetime

    from order_export_tui.service.events import EventDelivered
    from order_export_tui.service.monitoring import Tallies

    delivered: list[EventDelivered] = []
    tallies = Tallies()

    def listen(event: object) -> None:
        if isinstance(event, EventDelivered):
            delivered.append(event)
            tallies(event)

    running.service.subscribe(listen)
    # What a process killed between its send and the answer's record leaves behind: an
    # accepted event whose send began.
    now = datetime.now(UTC)
    event_id, _ = running.state.enqueue_event(
        kind="order_completed",
        order_id="SO-9",
        payload=orjson.dumps(order("SO-9")),
        dedupe_key="killed-mid-send",
        now=now,
    )
    running.state.note_send_started(event_id, now)
    answer = await running.webstore.order_completed(order("SO-10"))  # never began: new
    assert answer.status_code == 202

    await running.until(lambda: len(delivered) == 2)
    by_order = {event.order_id: event for event in delivered}
    assert by_order["SO-9"].resent and by_order["SO-9"].sent
    assert not by_order["SO-10"].resent
    assert (tallies.orders_sent, tallies.realtime_resends) == (1, 1)
    assert set(running.store.orders) >= {"SO-9", "SO-10"}


async def test_a_failed_attempt_is_recorded_so_its_retry_is_no_resend(running: Running) -> None:
    from order_export_tui.service.events import EventDelivered

    delivered: list[EventDelivered] = []
    running.service.subscribe(
        lambda event: delivered.append(event) if isinstance(event, EventDelivered) else None
    )
    running.server.plan(*[Fault(status=503) for _ in range(8)])

    answer = await running.webstore.order_completed(order("SO-11"))

    assert answer.status_code == 202
    await running.until(lambda: len(delivered) == 1, timeout=60)
    assert delivered[0].order_id == "SO-11" and not delivered[0].resent
