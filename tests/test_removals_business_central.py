"""Removals from Business Central reach the platform (interfaces.md §7): an order deleted
unposted is sent once as cancelled, one invoiced is not, and posted credit memos make an
order refunded or partially refunded. Against the loopback Business Central and the file
destination, with a real state database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from order_export_tui.destinations.file.connector import file_path
from order_export_tui.settings import Settings
from tests.fakes.business_central import BusinessCentralFake, item_line
from tests.support.business_central_setup import (
    add_jane,
    days_ago,
    engine_for,
    read_all,
    source_for,
)

SECRET_ENV = "BC_CLIENT_SECRET"


@pytest.fixture
def fake() -> Iterator[BusinessCentralFake]:
    with BusinessCentralFake(client_secret="s3cr3t-bc-value") as server:
        yield server


@pytest.fixture
def bc_settings(
    make_settings: Callable[..., Settings], fake: BusinessCentralFake, monkeypatch: Any
) -> Settings:
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)
    return make_settings(erp={"source": "business_central", "business_central": fake.settings()})


def sent_records(settings: Settings) -> list[dict[str, Any]]:
    """Every record the dry-run file received, in order (Dotdigital's shape)."""
    path = file_path(settings)
    if not path.exists():
        return []
    return [
        record
        for line in path.read_text().splitlines()
        for record in json.loads(line)["body"]["records"]
    ]


def add_order(fake: BusinessCentralFake, number: str, *lines: tuple[str, int, float]) -> None:
    fake.add_order(
        number=number,
        order_date=days_ago(5),
        customer="C-4711",
        lines=[item_line(sku, sku.title(), quantity, price) for sku, quantity, price in lines]
        or [item_line("ITEM-1", "Hat", 1, 10.0)],
    )


async def test_an_order_deleted_unposted_is_sent_once_as_cancelled_then_forgotten(
    fake: BusinessCentralFake, bc_settings: Settings
) -> None:
    add_jane(fake)
    for number in ("SO-1", "SO-2", "SO-3"):
        add_order(fake, number)
    engine = engine_for(bc_settings)
    try:
        first = await engine.run()
        assert first.counts["new"] == 3 and first.counts["cancelled"] == 0
        fake.delete_order("SO-2")

        second = await engine.run()

        assert second.outcome == "succeeded"
        assert second.counts["cancelled"] == 1
        assert second.counts["new"] == second.counts["updated"] == 0
        last = sent_records(bc_settings)[-1]
        assert (last["key"], last["json"]["paymentStatus"]) == ("SO-2", "cancelled")
        # Everything else of the record is what the platform last confirmed.
        before = next(r for r in sent_records(bc_settings) if r["key"] == "SO-2")
        assert {**before["json"], "paymentStatus": "cancelled"} == last["json"]
        assert engine.state.exported_orders(["SO-1", "SO-2", "SO-3"]).keys() == {"SO-1", "SO-3"}
        assert engine.state.recent_runs(1)[0].counts["cancelled"] == 1

        third = await engine.run()
        assert third.counts["cancelled"] == 0
        assert len(sent_records(bc_settings)) == 4  # nothing sent again
    finally:
        engine.state.close()


async def test_an_order_that_left_sales_orders_invoiced_is_not_sent_as_cancelled(
    fake: BusinessCentralFake, bc_settings: Settings
) -> None:
    add_jane(fake)
    add_order(fake, "SO-1")
    add_order(fake, "SO-2")
    engine = engine_for(bc_settings)
    try:
        assert (await engine.run()).counts["new"] == 2
        fake.invoice_without_shipment("SO-1")  # invoiced, never shipped: gone from salesOrders
        fake.delete_order("SO-2")  # cancelled

        report = await engine.run()

        assert report.counts["cancelled"] == 1
        cancelled = [
            r["key"] for r in sent_records(bc_settings) if r["json"]["paymentStatus"] == "cancelled"
        ]
        assert cancelled == ["SO-2"]
        # Both no longer count as exported: SO-1 was invoiced, SO-2 cancelled.
        assert engine.state.exported_orders(["SO-1", "SO-2"]) == {}
    finally:
        engine.state.close()


async def test_the_invoiced_capability_names_only_orders_with_a_posted_invoice(
    fake: BusinessCentralFake, bc_settings: Settings
) -> None:
    add_jane(fake)
    for number in ("SO-1", "SO-2", "SO-3"):
        add_order(fake, number)
    fake.ship_and_invoice("SO-1")
    fake.invoice_without_shipment("SO-3")
    source = source_for(bc_settings)
    try:
        assert await source.invoiced(["SO-1", "SO-2", "SO-3", "SO-404"]) == {"SO-1", "SO-3"}
    finally:
        await source.close()


async def test_a_credit_memo_for_the_whole_invoice_refunds_the_order_once(
    fake: BusinessCentralFake, bc_settings: Settings
) -> None:
    add_jane(fake)
    for number in ("SO-1", "SO-2", "SO-3"):
        add_order(fake, number, ("ITEM-1", 2, 10.0), ("ITEM-2", 1, 30.0))
    invoices = {}
    for number in ("SO-1", "SO-2"):  # shipped and invoiced: gone from salesOrders
        fake.post_shipment(number)
        invoices[number] = fake.post_invoice(number)
    engine = engine_for(bc_settings)
    try:
        assert (await engine.run()).counts["new"] == 3
        fake.post_credit_memo(invoices["SO-1"])  # the whole invoice
        fake.post_credit_memo(invoices["SO-2"], 12.1, status="Draft")  # not posted

        docs = await read_all(bc_settings)
        assert docs["SO-1"]["payment_status"] == "refunded"
        assert docs["SO-2"]["payment_status"] == docs["SO-3"]["payment_status"] == "pending"

        # The webstore said both were paid; the credit memo came after: it wins for SO-1.
        for number in ("SO-1", "SO-3"):
            engine.state.set_payment_override(
                number, "paid", occurred_at="2026-01-01T10:00:00+00:00", now=datetime.now(UTC)
            )

        second = await engine.run()
        assert second.counts["updated"] == 2 and second.counts["cancelled"] == 0
        sent = {r["key"]: r["json"]["paymentStatus"] for r in sent_records(bc_settings)[-2:]}
        assert sent == {"SO-1": "refunded", "SO-3": "paid"}
        assert (await engine.run()).counts["updated"] == 0  # sent once
        # One read of the window's credit memos per run (read_all's included), never one
        # request per order.
        assert len(fake.requests_to("salesCreditMemos")) == 4
    finally:
        engine.state.close()


async def test_credit_memos_adding_up_to_the_invoice_refund_it_in_full(
    fake: BusinessCentralFake, bc_settings: Settings
) -> None:
    add_jane(fake)
    add_order(fake, "SO-1", ("ITEM-1", 1, 50.0))
    add_order(fake, "SO-2", ("ITEM-1", 1, 50.0))
    fake.post_shipment("SO-1")
    fake.post_shipment("SO-2")
    engine = engine_for(bc_settings)
    try:
        assert (await engine.run()).counts["new"] == 2
        one = fake.post_invoice("SO-1")
        two = fake.post_invoice("SO-2")
        total = fake.tables["salesInvoices"].rows[one]["totalAmountIncludingTax"]
        fake.post_credit_memo(one, 20.0, name_invoice_by="id")
        fake.post_credit_memo(one, total - 20.0, name_invoice_by="number")
        fake.post_credit_memo(two, 20.0)

        report = await engine.run()

        statuses = {r["key"]: r["json"]["paymentStatus"] for r in sent_records(bc_settings)}
        assert statuses == {"SO-1": "refunded", "SO-2": "partially_refunded"}
        assert report.counts["updated"] == 2 and report.counts["cancelled"] == 0

        # A lookup by id (resend) builds the same documents: nothing differs.
        source = source_for(bc_settings)
        try:
            found = await source.get_orders(["SO-1", "SO-2"])
        finally:
            await source.close()
        assert found["SO-1"] is not None and found["SO-1"]["payment_status"] == "refunded"
        assert found["SO-2"] is not None
        assert found["SO-2"]["payment_status"] == "partially_refunded"
        resend = await engine.run("resend", only=frozenset({"SO-1", "SO-2"}))
        assert resend.counts["unchanged"] == 2
    finally:
        engine.state.close()


async def test_an_unposted_order_cancelled_on_a_failed_run_is_not_sent_as_cancelled(
    fake: BusinessCentralFake, bc_settings: Settings
) -> None:
    add_jane(fake)
    add_order(fake, "SO-1")
    add_order(fake, "SO-2")
    engine = engine_for(bc_settings)
    try:
        assert (await engine.run()).counts["new"] == 2
        fake.delete_order("SO-2")
        fake.forbidden.add("salesCreditMemos")  # a read fails: the window is not complete

        failed = await engine.run()

        assert failed.outcome == "failed" and "salesCreditMemos" in (failed.error or "")
        assert failed.counts["cancelled"] == 0
        assert engine.state.exported_orders(["SO-2"]).keys() == {"SO-2"}
        fake.forbidden.clear()
        assert (await engine.run()).counts["cancelled"] == 1
    finally:
        engine.state.close()


async def test_credit_memos_are_read_page_by_page_through_next_links(
    fake: BusinessCentralFake, bc_settings: Settings
) -> None:
    from datetime import datetime as moment

    from order_export_tui.engine.runner import window_start
    from order_export_tui.sources.business_central.source import BusinessCentralSource
    from order_export_tui.transport.retry import Retrier, RetryPolicy

    add_jane(fake)
    numbers = [f"SO-{n}" for n in range(1, 6)]
    for number in numbers:
        add_order(fake, number)
        fake.post_shipment(number)
        fake.post_credit_memo(fake.post_invoice(number))
    source = BusinessCentralSource.from_settings(
        bc_settings, Retrier(RetryPolicy(3, 60)), page_size=2
    )
    start = window_start(moment.now().astimezone(), bc_settings.task.max_days_to_export)
    try:
        docs = [doc async for chunk in source.iter_orders(start) for doc in chunk]
    finally:
        await source.close()

    assert {doc["order_id"]: doc["payment_status"] for doc in docs} == dict.fromkeys(
        numbers, "refunded"
    )
    pages = fake.requests_to("salesCreditMemos")
    assert len(pages) == 3  # 2 + 2 + 1, each page after the first from @odata.nextLink
    assert all("$skiptoken" in page.query for page in pages[1:])


async def test_check_connect_names_a_missing_right_to_read_credit_memos(
    fake: BusinessCentralFake, bc_settings: Settings
) -> None:
    from order_export_tui.sources.base import SourceError

    fake.forbidden.add("salesCreditMemos")
    source = source_for(bc_settings)
    try:
        with pytest.raises(SourceError, match="salesCreditMemos"):
            await source.check_connection()
        fake.forbidden.clear()
        assert "Business Central company" in await source.check_connection()
    finally:
        await source.close()
