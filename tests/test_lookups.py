"""Orders looked up by id (`OrderSource.get_orders`): the same documents a run reads, without
reading the window, from the demo ERP and from Business Central."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from order_export_tui.settings import Settings
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp
from tests.fakes.business_central import BusinessCentralFake, item_line
from tests.support.business_central_setup import (
    add_jane,
    days_ago,
    engine_for,
    source_for,
)
from tests.support.business_central_setup import (
    read_all as read_all_bc,
)
from tests.support.demo_erp import EPOCH, generate, read_all

# --- the demo ERP ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_erp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    path = tmp_path_factory.mktemp("lookup") / "erp.sqlite"
    generate(path)

    docs = {doc["order_id"]: doc for doc in asyncio.run(read_all(path, EPOCH))}
    yield path, docs


async def test_demo_lookup_returns_the_documents_a_scan_reads_and_none_for_unknown_ids(
    demo_erp: tuple[Path, dict[str, Any]],
) -> None:
    path, docs = demo_erp
    wanted = [*sorted(docs)[::37], "SO-NOPE", sorted(docs)[0]]
    source = DemoErpSource(path)
    try:
        found = await source.get_orders(wanted)
    finally:
        await source.close()
    assert list(found) == list(dict.fromkeys(wanted))  # each id once, in the order asked
    assert found["SO-NOPE"] is None
    for order_id in wanted[:-2]:
        assert found[order_id] == docs[order_id]


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_demo_lookup_of_any_ids_matches_the_scan(
    demo_erp: tuple[Path, dict[str, Any]], data: st.DataObject
) -> None:

    path, docs = demo_erp
    known = st.sampled_from(sorted(docs))
    unknown = st.text(min_size=0, max_size=12)
    ids = data.draw(st.lists(st.one_of(known, unknown), max_size=30))

    async def look() -> dict[str, Any]:
        source = DemoErpSource(path)
        try:
            return await source.get_orders(ids)
        finally:
            await source.close()

    found = asyncio.run(look())
    assert found == {order_id: docs.get(order_id) for order_id in ids}


async def test_a_demo_lookup_finds_an_order_outside_any_window(tmp_path: Path) -> None:
    path = tmp_path / "erp.sqlite"
    generate_demo_erp(path, orders=50, seed=3, days=400, malformed=0)
    docs = {doc["order_id"]: doc for doc in await read_all(path, EPOCH)}
    oldest = min(docs.values(), key=lambda doc: doc["order_date"])
    source = DemoErpSource(path)
    try:
        assert (await source.get_orders([oldest["order_id"]])) == {oldest["order_id"]: oldest}
    finally:
        await source.close()


# --- Business Central -------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[BusinessCentralFake]:
    with BusinessCentralFake(client_secret="s3cr3t-bc-value") as server:
        yield server


@pytest.fixture
def bc_settings(
    make_settings: Callable[..., Settings], fake: BusinessCentralFake, monkeypatch: Any
) -> Callable[..., Settings]:
    monkeypatch.setenv("BC_CLIENT_SECRET", fake.client_secret)

    def make(**overrides: Any) -> Settings:
        return make_settings(
            erp={"source": "business_central", "business_central": fake.settings()}, **overrides
        )

    return make


async def lookup(settings: Settings, ids: list[str]) -> dict[str, Any]:
    source = source_for(settings)
    try:
        return await source.get_orders(ids)
    finally:
        await source.close()


async def test_bc_lookup_filters_sales_orders_by_number_and_never_reads_the_window(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    numbers = fake.generate(30, 10, activity=False)
    settings = bc_settings()
    scanned = await read_all_bc(settings)
    before = len(fake.requests_to("salesOrders"))

    found = await lookup(settings, [numbers[3], numbers[17], "SO-999999"])

    assert found == {numbers[3]: scanned[numbers[3]], numbers[17]: scanned[numbers[17]],
                     "SO-999999": None}  # fmt: skip
    filters = [exchange.query.get("$filter", "") for exchange in fake.requests_to("salesOrders")]
    assert len(filters) - before == 1
    assert (
        filters[-1]
        == f"number eq '{numbers[3]}' or number eq '{numbers[17]}' or number eq 'SO-999999'"
    )
    assert all("orderDate" not in text for text in filters[before:])


async def test_bc_lookup_of_an_order_that_left_sales_orders_gives_what_a_run_would_send(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    numbers = fake.generate(10, 10, activity=False)
    settings = bc_settings()
    await engine_for(settings).run()  # the ledger keeps each open order's last document
    gone = numbers[4]
    fake.ship_and_invoice(gone)
    assert gone not in fake.order_numbers()

    found = await lookup(settings, [gone])
    scanned = await read_all_bc(settings)

    assert found[gone] is not None
    assert found[gone]["shipping_status"] == "shipped"
    assert found[gone] == scanned[gone]


async def test_bc_lookup_rebuilds_an_order_invoiced_before_any_run_from_its_invoice(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    add_jane(fake)
    fake.add_order(
        number="SO-300001",
        order_date=days_ago(6),
        customer="C-4711",
        lines=[item_line("ITEM-001", "Hat", 2, 10.0)],
    )
    fake.post_shipment("SO-300001", posting_date=days_ago(4))
    fake.post_invoice("SO-300001", posting_date=days_ago(3))
    settings = bc_settings()

    found = await lookup(settings, ["SO-300001"])

    assert found["SO-300001"] == (await read_all_bc(settings))["SO-300001"]
    assert found["SO-300001"]["customer"]["email"] == "jane@example.com"


async def test_bc_lookup_of_many_ids_goes_in_short_requests(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    numbers = fake.generate(45, 10, activity=False)
    settings = bc_settings()

    found = await lookup(settings, numbers)

    assert sorted(number for number, doc in found.items() if doc) == sorted(numbers)
    lookups = [e for e in fake.requests_to("salesOrders") if "number eq" in e.query["$filter"]]
    assert len(lookups) == 3  # 20 + 20 + 5
