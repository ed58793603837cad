"""The count a Business Central run starts with is what it then reads (issue 25 item 10: a run
said "(257 in the window)" and then "read 349"): the orders that left `salesOrders` (shipped
and invoiced) are counted too, on the first run and after orders left between runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from order_export_tui.engine.events import RunStarted
from order_export_tui.settings import Settings
from tests.fakes.business_central import BusinessCentralFake
from tests.support.business_central_setup import engine_for

SECRET_ENV = "BC_CLIENT_SECRET"


@pytest.fixture
def fake() -> Iterator[BusinessCentralFake]:
    with BusinessCentralFake(client_secret="s3cr3t-bc-value") as server:
        yield server


async def counted_and_read(settings: Settings) -> tuple[int | None, int]:
    engine = engine_for(settings)
    started: list[RunStarted] = []
    engine.subscribe(lambda event: started.append(event) if isinstance(event, RunStarted) else None)
    report = await engine.run()
    assert report.outcome == "succeeded", report.error
    assert len(started) == 1
    return started[0].total, report.counts["read"]


async def test_the_count_is_what_the_run_reads_first_and_after_orders_left(
    fake: BusinessCentralFake, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)
    settings = make_settings(
        erp={"source": "business_central", "business_central": fake.settings()}
    )
    fake.generate(400, 45, activity=True)  # a third of the older ones shipped and invoiced
    open_in_window = len(fake.tables["salesOrders"])

    total, read = await counted_and_read(settings)
    assert total == read
    assert read > open_in_window - 150  # more than the open orders: those that left count

    # Between runs: some orders ship in full and are invoiced (they leave salesOrders), one
    # ships in part, and one new order comes in.
    unshipped = sorted(
        number
        for number, order in fake.tables["salesOrders"].rows.items()
        if not any(line["shippedQuantity"] for line in order["_lines"])
    )
    for number in unshipped[:25]:
        fake.post_shipment(number)
        fake.post_invoice(number)
    order = fake.tables["salesOrders"].rows[unshipped[30]]
    first = next(line for line in order["_lines"] if line["quantity"] > 0)
    fake.post_shipment(unshipped[30], {first["sequence"]: 1})
    fake.generate(1, 1, seed=9, activity=False)

    total, read = await counted_and_read(settings)
    assert total == read
    total, read = await counted_and_read(settings)
    assert total == read
