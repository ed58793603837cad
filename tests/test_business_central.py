"""The Business Central source against the loopback Business Central (tests/fakes)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import stat
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from order_export_tui.destinations.file.connector import file_path
from order_export_tui.engine.runner import window_start
from order_export_tui.settings import Settings
from order_export_tui.sources.base import SourceError
from order_export_tui.sources.business_central.source import ledger_path
from tests.conftest import FakeClock, write_settings
from tests.fakes.business_central import (
    BusinessCentralFake,
    comment_line,
    item_line,
    too_many_requests,
)
from tests.support.business_central_setup import (
    add_jane,
    days_ago,
    engine_for,
    read_all,
    source_for,
)
from tests.support.cli import order_export
from tests.support.fault_server import Fault

SECRET_ENV = "BC_CLIENT_SECRET"
DEPOT = {"line1": "Dock 7", "line2": "Gate B", "city": "Rotterdam", "region": "ZH",
         "postcode": "3011", "country": "NL"}  # fmt: skip


@pytest.fixture
def fake() -> Iterator[BusinessCentralFake]:
    with BusinessCentralFake(client_secret="s3cr3t-bc-value") as server:
        yield server


@pytest.fixture
def bc_settings(
    make_settings: Callable[..., Settings], fake: BusinessCentralFake, monkeypatch: Any
) -> Callable[..., Settings]:
    """Settings for the fake, with the client secret in the environment."""
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)

    def make(bc: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """`bc`: keys of `[erp.business_central]` to change."""
        connection = fake.settings() | (bc or {})
        return make_settings(
            erp={"source": "business_central", "business_central": connection}, **overrides
        )

    return make


@pytest.fixture
def server_time_zone() -> Iterator[str]:
    """The server's local time zone is UTC+05:30 (a POSIX TZ: no tz database needed)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "IST-5:30"
    time.tzset()
    yield "+05:30"
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def file_records(settings: Settings) -> list[dict[str, Any]]:
    """Every record the dry-run file destination wrote, in order (Dotdigital's shape)."""
    if not file_path(settings).exists():
        return []
    lines = file_path(settings).read_text().splitlines()
    return [record for line in lines for record in json.loads(line)["body"]["records"]]


def latest_records(settings: Settings) -> dict[str, dict[str, Any]]:
    return {record["key"]: record["json"] for record in file_records(settings)}


# --- the mapping and the window ---------------------------------------------------------------


async def test_an_order_is_mapped_to_the_order_document_field_by_field(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings], server_time_zone: str
) -> None:
    add_jane(fake)
    day = days_ago(3)
    fake.add_order(
        number="SO-100234",
        order_date=day,
        customer="C-4711",
        email="",  # blank on the order: the customer's e-mail is used
        lines=[
            item_line("ITEM-001", "Hat", 2, 10.0),
            comment_line("Gift wrap, please"),
            item_line("ITEM-002", "Scarf", 1, 24.95),
        ],
        discount=5.0,
        ship_to=DEPOT,
    )
    fake.post_shipment("SO-100234", {10000: 1})

    docs = await read_all(bc_settings())

    assert docs["SO-100234"] == {
        "order_id": "SO-100234",
        "order_date": f"{day.isoformat()}T00:00:00{server_time_zone}",
        "customer": {
            "id": "C-4711",
            "email": "jane@example.com",
            "first_name": "Jane",
            "last_name": "Doe",
        },
        "currency": "EUR",
        "lines": [
            {
                "line_no": 10000,
                "sku": "ITEM-001",
                "name": "Hat",
                "quantity": 2,
                "unit_price": 10.0,
                "unit_price_incl_tax": 12.1,
            },
            {
                "line_no": 30000,
                "sku": "ITEM-002",
                "name": "Scarf",
                "quantity": 1,
                "unit_price": 24.95,
                "unit_price_incl_tax": 30.19,
            },
        ],
        "subtotal": 44.95,
        "discount": 5.0,
        "shipping_cost": 0.0,
        "tax": 8.39,
        "total": 48.34,
        "shipping_method": "DHL Parcel",
        "payment_method": "",
        "billing_address": {
            "line1": "Main St 1",
            "line2": "",
            "city": "Utrecht",
            "region": "",
            "postcode": "3511",
            "country": "NL",
        },
        "shipping_address": DEPOT | {},
        "shipping_status": "partially_shipped",
        "payment_status": "pending",
        "tracking_number": "",
        "tracking_url": "",
    }


async def test_prices_including_tax_and_a_company_customer_are_mapped_as_documented(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    fake.add_customer("C-9000", "First Up Consultants", "buyer@example.net", kind="Company")
    fake.add_order(
        number="SO-100900",
        order_date=days_ago(1),
        customer="C-9000",
        lines=[item_line("SVC-1", "Consulting hour", 3, 121.0, tax_percent=21.0)],
        prices_include_tax=True,
        shipment_method=None,
    )

    doc = (await read_all(bc_settings()))["SO-100900"]

    assert doc["customer"] == {
        "id": "C-9000",
        "email": "buyer@example.net",
        "first_name": "",  # a company's name is not split
        "last_name": "First Up Consultants",
    }
    assert doc["lines"] == [
        {
            "line_no": 10000,
            "sku": "SVC-1",
            "name": "Consulting hour",
            "quantity": 3,
            "unit_price": 100.0,
            "unit_price_incl_tax": 121.0,
        }
    ]
    assert (doc["subtotal"], doc["tax"], doc["total"]) == (300.0, 63.0, 363.0)
    assert doc["shipping_method"] == ""


async def test_a_run_exports_exactly_the_in_window_orders(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    fake.generate(150, 45, activity=False)  # a third of them lie before the 30-day window
    first_day = days_ago(30).isoformat()
    in_window = {
        number
        for number, order in fake.tables["salesOrders"].rows.items()
        if order["orderDate"] >= first_day
    }
    settings = bc_settings()

    report = await engine_for(settings).run()

    assert report.outcome == "succeeded", report.error
    exported = [record["key"] for record in file_records(settings)]
    assert sorted(exported) == sorted(in_window)  # each once, none outside the window
    assert 0 < len(in_window) < len(fake.tables["salesOrders"])
    assert report.counts["new"] == report.counts["read"] == len(in_window)


async def test_orders_are_read_over_several_pages_one_page_at_a_time(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    fake.max_page_size = 7  # the server caps the page size the source asks for
    numbers = fake.generate(30, 10, activity=False)
    settings = bc_settings()
    source = source_for(settings)
    chunks = aiter(source.iter_orders(window_start(datetime.now().astimezone(), 30)))

    first = await anext(chunks)

    assert len(first) == 7
    await asyncio.sleep(0.2)
    assert len(fake.requests_to("salesOrders")) == 2  # one page ahead of the consumer, no more
    rest = [doc async for chunk in chunks for doc in chunk]
    await source.close()
    read = [doc["order_id"] for doc in first + rest]
    assert sorted(read) == sorted(numbers)
    pages = fake.requests_to("salesOrders")
    assert len(pages) == math.ceil(30 / 7)
    assert all("$skiptoken" in page.query for page in pages[1:])
    assert all(page.prefer == "odata.maxpagesize=1000" for page in pages)


# --- the token --------------------------------------------------------------------------------


async def test_a_token_that_expires_mid_run_is_renewed_before_it_lapses(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    fake.token_lifetime = 1
    fake.latency = 0.08
    fake.max_page_size = 4
    numbers = fake.generate(60, 10, activity=False)  # 15 pages: well over a second
    settings = bc_settings()

    report = await engine_for(settings).run()

    assert report.outcome == "succeeded", report.error
    assert report.counts["new"] == len(numbers)
    assert fake.tokens_issued >= 2
    assert [e for e in fake.exchanges if e.status == 401] == []  # never sent a lapsed one


async def test_a_token_refused_mid_run_is_renewed_and_the_page_read_again(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    fake.max_page_size = 5
    numbers = fake.generate(20, 10, activity=False)
    source = source_for(bc_settings())
    chunks = aiter(source.iter_orders(window_start(datetime.now().astimezone(), 30)))
    read = [doc["order_id"] for doc in await anext(chunks)]

    fake.revoke_tokens()  # e.g. revoked by an administrator, or expired early
    read += [doc["order_id"] async for chunk in chunks for doc in chunk]
    await source.close()

    assert sorted(read) == sorted(numbers)
    assert [e.status for e in fake.exchanges if e.status == 401] == [401]
    assert fake.tokens_issued == 2


# --- shipping status --------------------------------------------------------------------------


async def test_a_partial_then_a_full_shipment_each_send_one_status_update(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    fake.generate(20, 10, activity=False)
    add_jane(fake)
    fake.add_order(
        number="SO-200001",
        order_date=days_ago(2),
        customer="C-4711",
        lines=[item_line("ITEM-001", "Hat", 2, 10.0), item_line("ITEM-002", "Scarf", 1, 24.95)],
    )
    settings = bc_settings()
    engine = engine_for(settings)
    first = await engine.run()
    assert first.counts["new"] == 21
    assert latest_records(settings)["SO-200001"]["shippingStatus"] == "not_shipped"

    fake.post_shipment("SO-200001", {10000: 1})
    partial = await engine.run()

    assert (partial.counts["updated"], partial.counts["new"]) == (1, 0)
    assert latest_records(settings)["SO-200001"]["shippingStatus"] == "partially_shipped"

    fake.post_shipment("SO-200001")  # the rest
    full = await engine.run()

    assert (full.counts["updated"], full.counts["new"]) == (1, 0)
    assert latest_records(settings)["SO-200001"]["shippingStatus"] == "shipped"
    assert (await engine.run()).counts["updated"] == 0
    assert len(file_records(settings)) == 21 + 2


async def test_an_order_deleted_after_shipping_and_invoicing_still_turns_shipped(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    numbers = fake.generate(20, 10, activity=False)
    fake.ship_and_invoice(numbers[0])  # shipped before the first run: shipments are known
    settings = bc_settings()
    engine = engine_for(settings)
    await engine.run()
    gone = numbers[5]
    before = latest_records(settings)[gone]
    assert before["shippingStatus"] == "not_shipped"

    fake.ship_and_invoice(gone)
    assert gone not in fake.order_numbers()  # Business Central deleted the order
    second = await engine.run()

    assert second.outcome == "succeeded", second.error
    assert (second.counts["updated"], second.counts["new"]) == (1, 0)
    after = latest_records(settings)[gone]
    assert after == before | {"shippingStatus": "shipped"}  # all else as it was
    shipments = fake.requests_to("salesShipments")
    assert shipments[-1].query["$filter"].startswith("lastModifiedDateTime gt ")  # incremental
    third = await engine.run()
    assert (third.counts["updated"], third.counts["unchanged"]) == (0, third.counts["read"])
    assert third.counts["read"] == 20


async def test_an_order_invoiced_before_any_run_is_rebuilt_from_its_posted_invoice(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings], server_time_zone: str
) -> None:
    add_jane(fake)
    fake.add_order(
        number="SO-300001",
        order_date=days_ago(6),
        customer="C-4711",
        lines=[item_line("ITEM-001", "Hat", 2, 10.0)],
    )
    shipped_on = days_ago(4)
    fake.post_shipment("SO-300001", posting_date=shipped_on)
    fake.post_invoice("SO-300001", posting_date=days_ago(3))

    docs = await read_all(bc_settings())

    doc = docs["SO-300001"]
    assert doc["shipping_status"] == "shipped"
    # API v2.0 gives posted documents no order date: the first shipment's posting date stands in
    assert doc["order_date"] == f"{shipped_on.isoformat()}T00:00:00{server_time_zone}"
    assert doc["customer"]["email"] == "jane@example.com"
    assert doc["lines"] == [
        {"line_no": 10000, "sku": "ITEM-001", "name": "Hat", "quantity": 2,
         "unit_price": 10.0, "unit_price_incl_tax": 12.1},
    ]  # fmt: skip
    assert (doc["subtotal"], doc["tax"], doc["total"]) == (20.0, 4.2, 24.2)


# --- retries and refusals ---------------------------------------------------------------------


async def test_429_with_retry_after_is_honoured_and_a_503_retried(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings], fake_clock: FakeClock
) -> None:
    fake.max_page_size = 5
    numbers = fake.generate(12, 10, activity=False)

    def second_page(method: str, path: str) -> bool:  # its first two attempts
        return path.endswith("/salesOrders") and len(fake.requests_to("salesOrders")) in (1, 2)

    fake.plan(too_many_requests(7), Fault(status=503), when=second_page)
    settings = bc_settings()

    report = await engine_for(settings, fake_clock).run()

    assert report.outcome == "succeeded", report.error
    assert report.counts["new"] == len(numbers)
    assert report.counts["retried"] == 2
    assert fake_clock.sleeps[0] == 7.0  # the platform's own word on when to come back
    statuses = [e.status for e in fake.requests_to("salesOrders")]
    assert statuses == [200, 429, 503, 200, 200]


async def test_retries_that_do_not_help_fail_the_run_with_the_last_error(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings], fake_clock: FakeClock
) -> None:
    fake.generate(5, 10, activity=False)
    fake.break_requests(lambda method, path: path.endswith("/salesOrders"), 503)

    report = await engine_for(bc_settings(), fake_clock).run()

    assert report.outcome == "failed"
    assert "GET salesOrders (page 1) failed after 3 retries" in (report.error or "")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"client_secret": "wrong-secret-value"},
            "the client secret in BC_CLIENT_SECRET is wrong or expired",
        ),
        ({"tenant": "fabrikam"}, "tenant 'fabrikam' is unknown"),
        ({"company": "0f0f0f0f-0000-4000-8000-000000000000"}, "erp.business_central.company_id"),
    ],
    ids=["wrong secret", "wrong tenant", "wrong company"],
)
def test_wrong_credentials_fail_the_run_with_a_clear_message_and_exit_code_1(
    fake: BusinessCentralFake, tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    fake.generate(5, 10, activity=False)
    bc = fake.settings()
    if "tenant" in change:
        bc["tenant_id"] = change["tenant"]
        bc["token_url"] = f"{fake.url}/{change['tenant']}/oauth2/v2.0/token"
    if "company" in change:
        bc["company_id"] = change["company"]
    write_settings(tmp_path, {"erp": {"source": "business_central", "business_central": bc}})
    secret = change.get("client_secret", fake.client_secret)

    result = order_export("run", "--json", cwd=tmp_path, env={SECRET_ENV: secret})

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "failed"
    assert expected in report["error"]
    log_text = Path(report["log_file"]).read_text()
    for text in (result.stdout, result.stderr, log_text):
        assert secret not in text
    assert fake.tokens_issued == (1 if "company" in change else 0)


async def test_refusals_name_what_to_fix(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    settings = bc_settings()
    source = source_for(settings, retries=0)
    start = window_start(datetime.now().astimezone(), 30)

    fake.forbidden = {"salesOrders"}
    with pytest.raises(SourceError, match=r"HTTP 403.*the app lacks permissions"):
        await source.count_orders(start)
    fake.forbidden = set()
    fake.app_registered = False
    with pytest.raises(SourceError, match=r"HTTP 401.*'Microsoft Entra Applications' page"):
        await source.count_orders(start)
    await source.close()


async def test_check_connection_proves_token_environment_and_company(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings], monkeypatch: Any
) -> None:
    settings = bc_settings()
    source = source_for(settings, retries=0)
    assert await source.check_connection() == (
        f"Business Central company Demo Webstore Ltd. at {fake.base_url}"
    )
    await source.close()

    wrong_environment = bc_settings({"base_url": fake.base_url.replace("production", "sandbox")})
    source = source_for(wrong_environment, retries=0)
    with pytest.raises(SourceError, match=r"HTTP 404.*check the environment in .*base_url"):
        await source.check_connection()
    await source.close()

    wrong_company = bc_settings({"company_id": "c0ffee"})
    source = source_for(wrong_company, retries=0)
    with pytest.raises(SourceError, match=rf"no company 'c0ffee'.*{fake.company['id']}"):
        await source.check_connection()
    await source.close()

    monkeypatch.delenv(SECRET_ENV)
    source = source_for(settings, retries=0)
    with pytest.raises(SourceError, match=f"environment variable {SECRET_ENV} is not set"):
        await source.check_connection()
    await source.close()


async def test_without_its_ledger_a_deleted_order_is_rebuilt_from_its_invoice(
    fake: BusinessCentralFake, bc_settings: Callable[..., Settings]
) -> None:
    numbers = fake.generate(10, 10, activity=False)
    settings = bc_settings()
    await engine_for(settings).run()
    ledger = ledger_path(settings)
    assert ledger == settings.state_database_path.with_name("state.business-central.sqlite")
    assert ledger.is_file()

    fake.ship_and_invoice(numbers[0])
    for path in ledger.parent.glob(f"{ledger.name}*"):
        path.unlink()
    docs = await read_all(settings)

    assert sorted(docs) == sorted(numbers)
    assert docs[numbers[0]]["shipping_status"] == "shipped"


def test_the_ledger_of_order_documents_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    from order_export_tui.sources.business_central.ledger import Ledger

    before = os.umask(0)
    try:
        ledger = Ledger(tmp_path / "new" / "state.sqlite.business-central.sqlite", "company-1")
    finally:
        os.umask(before)
    try:
        files = [ledger.path, Path(f"{ledger.path}-wal"), Path(f"{ledger.path}-shm")]
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
        assert set(modes.values()) == {0o600}, {name: oct(mode) for name, mode in modes.items()}
        assert stat.S_IMODE(ledger.path.parent.stat().st_mode) == 0o700
    finally:
        ledger.close()
