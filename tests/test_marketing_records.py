"""Marketing records as the platforms' own integrations make them (issue 16), against the
loopback Mailchimp, Dotdigital and Business Central, which validate every body against the
official specs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from order_export_tui.destinations.base import OrderChange
from order_export_tui.destinations.dotdigital.destination import DotdigitalDestination
from order_export_tui.destinations.file.destination import FileDestination
from order_export_tui.destinations.mailchimp.destination import MailchimpDestination
from order_export_tui.engine.runner import window_start
from order_export_tui.orders import OrderDocument, content_hash, order_problem
from order_export_tui.settings import Settings
from order_export_tui.sources.business_central.source import BusinessCentralSource
from order_export_tui.sources.demo import DemoErpSource
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import ExportedOrder
from order_export_tui.transport.retry import Retrier, RetryPolicy
from tests.fakes.business_central import BusinessCentralFake, item_line
from tests.fakes.dotdigital import FakeDotdigital
from tests.fakes.mailchimp import MailchimpFake
from tests.support.demo_erp import demo

KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f9-us7"
KEY_ENV = "ORDER_EXPORT_TEST_MAILCHIMP_KEY"
STORE = "records-store"
AUDIENCE = "aud-0001"
DD_USER = "apiuser-records@apiconnector.com"
DD_PASSWORD = "pw-records-never-shown"
DD_PASSWORD_ENV = "DD_RECORDS_PASSWORD"


@pytest.fixture
def mailchimp() -> Iterator[MailchimpFake]:
    with MailchimpFake(KEY, lists=(AUDIENCE,)) as server:
        yield server
    assert server.schema_errors == []


@pytest.fixture
def dotdigital() -> Iterator[FakeDotdigital]:
    with FakeDotdigital(DD_USER, DD_PASSWORD) as server:
        yield server
    assert server.internal_errors == []
    assert server.invalid_requests == []


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(DD_PASSWORD_ENV, DD_PASSWORD)


def mailchimp_settings(make_settings: Any, fake: MailchimpFake, **extra: Any) -> Settings:
    return make_settings(
        destination={"app": "mailchimp"},
        mailchimp={
            "api_key_env": KEY_ENV,
            "base_url": fake.url,
            "store_id": STORE,
            "list_id": AUDIENCE,
        },
        **extra,
    )


def dotdigital_settings(make_settings: Any, fake: FakeDotdigital, **dotdigital: Any) -> Settings:
    return make_settings(
        destination={"app": "dotdigital"},
        dotdigital={
            "base_url": fake.url,
            "api_user": DD_USER,
            "password_env": DD_PASSWORD_ENV,
            **dotdigital,
        },
    )


def distinct_customers(docs: list[OrderDocument]) -> list[OrderDocument]:
    """One order per e-mail address."""
    return list({doc["customer"]["email"].lower(): doc for doc in docs}.values())


async def demo_documents(settings: Settings, orders: int = 60) -> list[OrderDocument]:
    demo(settings, orders=orders, malformed=0)
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    source = DemoErpSource(demo_database_path(settings))
    docs: list[OrderDocument] = []
    async for chunk in source.iter_orders(start):
        docs.extend(doc for doc in chunk if order_problem(doc) is None)
    await source.close()
    return docs


def priced_sku_order(docs: list[OrderDocument], currency: str) -> OrderDocument:
    """The first order in `currency` whose first line's SKU no order in another currency
    among `docs` holds: the product that order creates gets its price."""
    foreign = {ln["sku"] for doc in docs if doc["currency"] != currency for ln in doc["lines"]}
    for doc in docs:
        if doc["currency"] == currency and doc["lines"][0]["sku"] not in foreign:
            return doc
    raise AssertionError(f"no order in {currency} among the first {len(docs)}")


def retrier() -> Retrier:
    return Retrier(RetryPolicy(3, 60))


async def run_batch(
    destination: MailchimpDestination | DotdigitalDestination,
    docs: list[OrderDocument],
    kind: str = "new",
) -> dict[str, str]:
    """One run, as the engine drives a destination: open, one batch, close."""
    await destination.open()
    try:
        changes = [OrderChange(doc, kind, None) for doc in docs]  # type: ignore[arg-type]
        return await destination.send_batch(changes, retrier())
    finally:
        await destination.close()


async def send_one(
    destination: MailchimpDestination | DotdigitalDestination, doc: OrderDocument
) -> str | None:
    await destination.open()
    try:
        return await destination.send_one(OrderChange(doc, "new", None), retrier())
    finally:
        await destination.close()


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


# --- 1. is_syncing for a backfill only ----------------------------------------------------------


async def test_a_second_run_with_new_orders_never_sets_is_syncing(make_settings, mailchimp) -> None:
    settings = mailchimp_settings(make_settings, mailchimp)
    docs = await demo_documents(settings)
    first, second = docs[:30], docs[30:]

    assert await run_batch(MailchimpDestination.from_settings(settings), first) == {}
    assert mailchimp.syncing_history[STORE] == [True, False]  # the first run: a backfill

    assert await run_batch(MailchimpDestination.from_settings(settings), second) == {}

    assert mailchimp.syncing_history[STORE] == [True, False]  # never true again
    orders = mailchimp.store_orders(STORE)
    assert all(not orders[doc["order_id"]]["created_while_syncing"] for doc in second)
    confirmed = {order_id for kind, order_id in mailchimp.notifications}
    assert {doc["order_id"] for doc in second} <= confirmed
    assert not {doc["order_id"] for doc in first} & confirmed


async def test_a_run_marked_as_a_backfill_syncs_a_store_that_has_orders(
    make_settings, mailchimp
) -> None:
    settings = mailchimp_settings(make_settings, mailchimp)
    docs = await demo_documents(settings)
    await run_batch(MailchimpDestination.from_settings(settings), docs[:10])
    backfill = MailchimpDestination.from_settings(settings)
    backfill.backfill = True  # `run --since`

    await run_batch(backfill, docs[10:])

    assert mailchimp.syncing_history[STORE] == [True, False, True, False]
    assert mailchimp.stores[STORE]["is_syncing"] is False


async def test_a_first_run_to_an_existing_empty_store_is_a_backfill(
    make_settings, mailchimp
) -> None:
    settings = mailchimp_settings(make_settings, mailchimp)
    docs = await demo_documents(settings, orders=20)
    await send_one(MailchimpDestination.from_settings(settings), docs[0])  # creates the store
    with mailchimp.lock:
        mailchimp.orders.clear()  # a store that holds none of its orders yet

    await run_batch(MailchimpDestination.from_settings(settings), docs)

    assert mailchimp.syncing_history[STORE] == [False, True, False]


# --- 2. and 3. customers and financial status -----------------------------------------------


async def test_two_guests_under_one_erp_customer_become_two_mailchimp_customers(
    make_settings, mailchimp
) -> None:
    settings = mailchimp_settings(make_settings, mailchimp)
    template = (await demo_documents(settings, orders=10))[0]
    guests = [
        {
            **template,
            "order_id": f"WEB-{n}",
            "customer": {"id": "GUEST", "email": email, "first_name": name, "last_name": "Guest"},
        }
        for n, (email, name) in enumerate(
            [("Ann.Guest@Example.com", "Ann"), ("bob.guest@example.net", "Bob")]
        )
    ]

    assert await run_batch(MailchimpDestination.from_settings(settings), guests) == {}

    customers = {cid: c for (sid, cid), c in mailchimp.customers.items() if sid == STORE}
    assert set(customers) == {subscriber_hash(g["customer"]["email"]) for g in guests}
    for guest in guests:
        customer = customers[subscriber_hash(guest["customer"]["email"])]
        assert customer["email_address"] == guest["customer"]["email"]
        assert customer["first_name"] == guest["customer"]["first_name"]
        assert customer["opt_in_status"] is False
        order = mailchimp.store_orders(STORE)[guest["order_id"]]
        assert order["customer"]["id"] == subscriber_hash(guest["customer"]["email"])


async def test_a_failed_payment_arrives_as_failed_and_sends_no_confirmation(
    make_settings, mailchimp
) -> None:
    settings = mailchimp_settings(make_settings, mailchimp)
    docs = await demo_documents(settings, orders=10)
    await run_batch(MailchimpDestination.from_settings(settings), docs[1:])  # the backfill
    failed = {**docs[0], "payment_status": "failed"}

    assert await run_batch(MailchimpDestination.from_settings(settings), [failed]) == {}

    order = mailchimp.store_orders(STORE)[failed["order_id"]]
    assert order["financial_status"] == "failed"
    assert ("order_invoice", failed["order_id"]) not in mailchimp.notifications


# --- 4. products --------------------------------------------------------------------------------


async def test_products_go_only_when_new_or_changed_and_never_with_an_old_orders_price(
    make_settings, mailchimp
) -> None:
    settings = mailchimp_settings(make_settings, mailchimp)
    docs = await demo_documents(settings, orders=30)
    await run_batch(MailchimpDestination.from_settings(settings), docs[:10])
    # A product created with a price: its SKU bought in the first ten only in the store's
    # currency (which of the demo's orders those are depends on the hour it was generated at).
    store_currency = mailchimp.stores[STORE]["currency_code"]
    first = priced_sku_order(docs[:10], store_currency)
    sku = first["lines"][0]["sku"]
    created_price = mailchimp.products[(STORE, sku)]["variants"][sku]["price"]
    product_writes = len([e for e in mailchimp.writes() if "/products" in e.path])
    line = {**first["lines"][0], "unit_price": 0.5, "line_no": 1}
    old_order = {**first, "order_id": "OLD-1", "lines": [line]}

    # A later run (a new destination, the memory in the state database): an old order at
    # another price, and products already sent: no product request at all.
    await run_batch(MailchimpDestination.from_settings(settings), [old_order, *docs[10:]])

    assert mailchimp.products[(STORE, sku)]["variants"][sku]["price"] == created_price
    new_skus = {ln["sku"] for doc in docs[10:] for ln in doc["lines"]} - {
        ln["sku"] for doc in docs[:10] for ln in doc["lines"]
    }
    writes = [e for e in mailchimp.writes() if "/products" in e.path][product_writes:]
    assert [(e.method, e.path) for e in writes if e.method != "POST"] == []
    assert sorted(e.body["id"] for e in writes) == sorted(new_skus)

    # The item's data changed (a new name and picture): the product is updated, its price kept.
    renamed = {
        **line,
        "name": "Renamed hat",
        "image_url": "https://shop.example.com/media/renamed.jpg",
    }
    await run_batch(
        MailchimpDestination.from_settings(settings),
        [{**first, "order_id": "OLD-2", "lines": [renamed]}],
    )

    product = mailchimp.products[(STORE, sku)]
    assert product["title"] == "Renamed hat"
    assert product["image_url"] == "https://shop.example.com/media/renamed.jpg"
    assert product["variants"][sku]["price"] == created_price
    assert mailchimp.product_updates == [sku]
    variant_puts = mailchimp.requests_to("PUT", f"/variants/{sku}")
    assert variant_puts and all("price" not in e.body for e in variant_puts)


async def test_a_product_deleted_in_mailchimp_is_created_again_for_the_next_order(
    make_settings, mailchimp
) -> None:
    settings = mailchimp_settings(make_settings, mailchimp)
    docs = await demo_documents(settings, orders=10)
    await run_batch(MailchimpDestination.from_settings(settings), docs[:1])
    sku = docs[0]["lines"][0]["sku"]
    with mailchimp.lock:
        del mailchimp.products[(STORE, sku)]

    again = {**docs[0], "order_id": "AGAIN-1"}
    assert await run_batch(MailchimpDestination.from_settings(settings), [again]) == {}

    assert (STORE, sku) in mailchimp.products
    assert "AGAIN-1" in mailchimp.store_orders(STORE)


# --- 7. the optional fields ---------------------------------------------------------------------

MARKETED: dict[str, Any] = {
    "coupon_code": "WELCOME10",
    "campaign_id": "a1b2c3d4e5",
    "landing_site": "https://shop.example.com/?utm_campaign=autumn-sale",
}
LINE_EXTRAS: dict[str, Any] = {
    "product_url": "https://shop.example.com/products/hat",
    "image_url": "https://shop.example.com/media/hat.jpg",
    "categories": ["Accessories", "Accessories/Hats"],
}


def marketed(doc: OrderDocument, order_id: str = "MKT-1") -> OrderDocument:
    line = {**doc["lines"][0], "sku": "HAT-MKT", **LINE_EXTRAS}
    return {**doc, "order_id": order_id, "discount": 2.5, **MARKETED, "lines": [line]}


async def test_the_optional_fields_reach_mailchimp_where_the_mapping_says(
    make_settings, mailchimp
) -> None:
    settings = mailchimp_settings(make_settings, mailchimp)
    doc = marketed((await demo_documents(settings, orders=10))[0])

    assert await send_one(MailchimpDestination.from_settings(settings), doc) is None

    order = mailchimp.store_orders(STORE)["MKT-1"]
    assert order["campaign_id"] == MARKETED["campaign_id"]
    assert order["landing_site"] == MARKETED["landing_site"]
    assert order["promos"] == [{"code": "WELCOME10", "type": "fixed", "amount_discounted": 2.5}]
    assert order["processed_at_foreign"] == doc["order_date"]
    assert "cancelled_at_foreign" not in order
    product = mailchimp.products[(STORE, "HAT-MKT")]
    assert (product["url"], product["image_url"]) == (
        LINE_EXTRAS["product_url"],
        LINE_EXTRAS["image_url"],
    )
    assert product["variants"]["HAT-MKT"]["image_url"] == LINE_EXTRAS["image_url"]

    cancelled = {**doc, "payment_status": "cancelled"}
    destination = MailchimpDestination.from_settings(settings)
    await destination.open()
    try:
        previous = ExportedOrder(
            "MKT-1", content_hash(doc), doc["shipping_status"], doc["payment_status"]
        )
        change = OrderChange(cancelled, "updated", previous)
        assert await destination.send_one(change, retrier()) is None
    finally:
        await destination.close()

    patch = mailchimp.requests_to("PATCH", "/orders/MKT-1")[-1].body
    assert patch["financial_status"] == "cancelled"
    stamp = datetime.fromisoformat(patch["cancelled_at_foreign"])
    assert stamp >= datetime.fromisoformat(doc["order_date"])
    assert mailchimp.store_orders(STORE)["MKT-1"]["cancelled_at_foreign"] == stamp.isoformat()


async def test_the_optional_fields_reach_dotdigital_as_record_fields(
    make_settings, dotdigital
) -> None:
    settings = dotdigital_settings(make_settings, dotdigital)
    docs = distinct_customers(await demo_documents(settings, orders=30))
    bulk, single = marketed(docs[0], "MKT-BULK"), marketed(docs[1], "MKT-ONE")
    plain = docs[2]

    assert await run_batch(DotdigitalDestination.from_settings(settings), [bulk, plain]) == {}
    assert await send_one(DotdigitalDestination.from_settings(settings), single) is None

    records = dotdigital.records()
    for order_id in ("MKT-BULK", "MKT-ONE"):
        record = records[order_id]
        assert record["couponCode"] == "WELCOME10"
        product = record["products"][0]
        assert product["url"] == LINE_EXTRAS["product_url"]
        assert product["imageUrl"] == LINE_EXTRAS["image_url"]
        assert product["categories"] == LINE_EXTRAS["categories"]
    assert "couponCode" not in records[plain["order_id"]] or plain.get("coupon_code")


# --- 8. the contacts an order creates in Dotdigital ---------------------------------------------


async def test_a_contact_created_for_an_order_consents_to_nothing_and_joins_no_list(
    make_settings, dotdigital
) -> None:
    settings = dotdigital_settings(make_settings, dotdigital)
    docs = distinct_customers(await demo_documents(settings, orders=30))
    bulk, single = (
        docs[0],
        {**docs[1], "customer": {**docs[1]["customer"], "email": "one@example.org"}},
    )
    existing = docs[2]["customer"]["email"]
    dotdigital.add_contact(existing, status="unsubscribed", opt_in_type="double", lists=(7,),
                           firstName="Set by marketing")  # fmt: skip

    assert await run_batch(DotdigitalDestination.from_settings(settings), [bulk, docs[2]]) == {}
    assert await send_one(DotdigitalDestination.from_settings(settings), single) is None

    for doc in (bulk, single):
        contact = dotdigital.contact(doc["customer"]["email"])
        assert contact is not None
        assert contact.opt_in_type == "unknown"
        assert contact.consent_records == []
        assert contact.lists == set()
        assert contact.data_fields == {
            "firstName": doc["customer"]["first_name"],
            "lastName": doc["customer"]["last_name"],
        }
    kept = dotdigital.contact(existing)
    assert kept is not None
    assert (kept.email_status, kept.opt_in_type, kept.lists) == ("unsubscribed", "double", {7})
    assert kept.data_fields["firstName"] == "Set by marketing"
    assert kept.data_fields["lastName"] == docs[2]["customer"]["last_name"]  # was empty


async def test_a_contact_list_named_in_the_settings_is_the_only_list_joined(
    make_settings, dotdigital
) -> None:
    settings = dotdigital_settings(make_settings, dotdigital, contact_list_id=4242)
    docs = distinct_customers(await demo_documents(settings, orders=30))
    single = {**docs[1], "customer": {**docs[1]["customer"], "email": "one@example.org"}}
    dotdigital.add_contact(docs[2]["customer"]["email"], status="unsubscribed", lists=(7,))

    assert await run_batch(DotdigitalDestination.from_settings(settings), [docs[0], docs[2]]) == {}
    assert await send_one(DotdigitalDestination.from_settings(settings), single) is None

    for email in (docs[0]["customer"]["email"], "one@example.org"):
        contact = dotdigital.contact(email)
        assert contact is not None and contact.lists == {4242}
        assert contact.opt_in_type == "unknown" and contact.consent_records == []
    kept = dotdigital.contact(docs[2]["customer"]["email"])
    assert kept is not None
    assert (kept.email_status, kept.lists) == ("unsubscribed", {7, 4242})


# --- 5. and 6. tracking: the shipment's carrier, Business Central's tracking numbers ----------

BC_SECRET_ENV = "BC_RECORDS_SECRET"
TRACKING_ROUTE = "contoso/shipping/v1.0"
DHL_TEMPLATE = "https://www.dhl.com/global-en/home/tracking.html?tracking-id={tracking_number}"


async def read_business_central(settings: Settings) -> dict[str, OrderDocument]:
    source = BusinessCentralSource.from_settings(settings, retrier())
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    docs: dict[str, OrderDocument] = {}
    try:
        async for chunk in source.iter_orders(start):
            docs.update((doc["order_id"], doc) for doc in chunk)
    finally:
        await source.close()
    return docs


async def test_business_central_tracking_numbers_and_urls_reach_both_platforms(
    make_settings, mailchimp, dotdigital, monkeypatch
) -> None:
    with BusinessCentralFake(client_secret="bc-records-secret") as erp:
        monkeypatch.setenv(BC_SECRET_ENV, erp.client_secret)
        erp.publish_tracking_page(TRACKING_ROUTE, "packageTrackingNo")
        erp.add_customer("C-4711", "Jane Doe", "jane@example.com")
        lines = [item_line("ITEM-001", "Hat", 2, 10.0)]
        for number in ("SO-300001", "SO-300002", "SO-300003"):
            erp.add_order(number=number, order_date=date.today() - timedelta(days=2),
                          customer="C-4711", lines=lines, shipment_method="POSTNL")  # fmt: skip
        erp.post_shipment("SO-300001", {10000: 1}, tracking_number="JVGL0600123")
        erp.post_shipment("SO-300001", tracking_number="JVGL0600456")  # the latest wins
        erp.post_shipment("SO-300002")  # posted without a tracking number
        bc = erp.settings(BC_SECRET_ENV) | {
            "shipment_tracking_field": "packageTrackingNo",
            "shipment_tracking_api": TRACKING_ROUTE,
            "tracking_url_template": DHL_TEMPLATE,
        }
        settings = make_settings(erp={"source": "business_central", "business_central": bc})
        docs = await read_business_central(settings)
        assert any(f"/api/{TRACKING_ROUTE}/" in e.path for e in erp.exchanges)

    shipped = docs["SO-300001"]
    assert shipped["tracking_number"] == "JVGL0600456"
    assert shipped["tracking_url"] == DHL_TEMPLATE.format(tracking_number="JVGL0600456")
    assert (docs["SO-300002"]["tracking_number"], docs["SO-300002"]["tracking_url"]) == ("", "")
    assert docs["SO-300003"]["shipping_status"] == "not_shipped"

    chimp = mailchimp_settings(make_settings, mailchimp)
    assert await run_batch(MailchimpDestination.from_settings(chimp), list(docs.values())) == {}
    order = mailchimp.store_orders(STORE)["SO-300001"]
    assert order["tracking_number"] == "JVGL0600456"
    assert order["tracking_url"] == shipped["tracking_url"]
    assert order["tracking_carrier"] == "DHL"  # the shipment's, not the method "PostNL"
    assert "tracking_carrier" not in mailchimp.store_orders(STORE)["SO-300002"]

    digital = dotdigital_settings(make_settings, dotdigital)
    assert await run_batch(DotdigitalDestination.from_settings(digital), list(docs.values())) == {}
    record = dotdigital.records()["SO-300001"]
    assert (record["trackingNumber"], record["trackingUrl"]) == (
        "JVGL0600456",
        shipped["tracking_url"],
    )


async def test_a_tracking_number_posted_after_a_run_reaches_the_next_one(
    make_settings, monkeypatch
) -> None:
    with BusinessCentralFake(client_secret="bc-records-secret") as erp:
        monkeypatch.setenv(BC_SECRET_ENV, erp.client_secret)
        erp.publish_tracking_page(TRACKING_ROUTE, "packageTrackingNo")
        erp.add_customer("C-4711", "Jane Doe", "jane@example.com")
        erp.add_order(number="SO-300010", order_date=date.today() - timedelta(days=1),
                      customer="C-4711", lines=[item_line("ITEM-001", "Hat", 1, 10.0)])  # fmt: skip
        bc = erp.settings(BC_SECRET_ENV) | {
            "shipment_tracking_field": "packageTrackingNo",
            "shipment_tracking_api": TRACKING_ROUTE,
        }
        settings = make_settings(erp={"source": "business_central", "business_central": bc})
        assert (await read_business_central(settings))["SO-300010"]["tracking_number"] == ""

        erp.post_shipment("SO-300010", tracking_number="00340434161094042557")
        doc = (await read_business_central(settings))["SO-300010"]

    assert (doc["tracking_number"], doc["tracking_url"]) == ("00340434161094042557", "")
    assert doc["shipping_status"] == "shipped"


async def test_the_dry_run_file_writes_the_optional_fields_as_dotdigital_would_get_them(
    make_settings, tmp_path
) -> None:
    settings = make_settings()
    doc = marketed((await demo_documents(settings, orders=5))[0])
    destination = FileDestination(tmp_path / "dry.jsonl", store_name="Shop")

    await run_batch(destination, [doc])  # type: ignore[arg-type]
    await send_one(destination, doc)  # type: ignore[arg-type]

    bulk, single = (json.loads(line) for line in (tmp_path / "dry.jsonl").read_text().splitlines())
    for record in (bulk["body"]["records"][0]["json"], single["body"]):
        assert record["couponCode"] == "WELCOME10"
        assert record["products"][0]["imageUrl"] == LINE_EXTRAS["image_url"]
        assert record["products"][0]["categories"] == LINE_EXTRAS["categories"]
