"""Each destination reads its copy back for `verify` (interfaces.md §8), against the real
loopback fakes: a copy built by a real run compares clean with the ERP; drift made in the
fake's store (deleted, changed, extra, moved) is named exactly; a platform that cannot be read
fails the read-back loudly, never with an empty copy."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from order_export_tui.destinations.base import DestinationError, OrderChange
from order_export_tui.destinations.dotdigital.destination import DotdigitalDestination
from order_export_tui.destinations.dotdigital.records import order_record_json
from order_export_tui.destinations.file.connector import file_path
from order_export_tui.destinations.file.destination import FileDestination
from order_export_tui.destinations.mailchimp.destination import MailchimpDestination
from order_export_tui.destinations.mailchimp.payloads import order_body
from order_export_tui.destinations.readback import PlatformOrder
from order_export_tui.destinations.readback_spill import SortedSpill, document_spill
from order_export_tui.engine.drift import Drift, compare
from order_export_tui.engine.runner import window_start
from order_export_tui.orders import OrderDocument, order_problem
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import DemoErpSource
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.transport.retry import Retrier, RetriesExhaustedError, RetryPolicy
from tests.fakes.dotdigital import INSIGHT_SPEC, FakeDotdigital
from tests.fakes.mailchimp import MailchimpFake
from tests.support.clock import FakeClock
from tests.support.demo_erp import demo
from tests.support.dotdigital_account import PASSWORD, PASSWORD_ENV, USER, dotdigital_overrides
from tests.support.engines import make_engine
from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, STORE, mailchimp_overrides
from tests.support.orders import VALID
from tests.support.specs import MAILCHIMP, assert_valid, assert_valid_answer

ORDERS_ROUTE = "/ecommerce/stores/{store_id}/orders"
RECORDS_ANSWER = (
    "#/paths/~1insightData~1v3~1contacts~1{collectionName}/get/responses/200/content/"
    "application~1json/schema"
)


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


@pytest.fixture
def mailchimp() -> Iterator[MailchimpFake]:
    with MailchimpFake(KEY, lists=(AUDIENCE,)) as server:
        yield server
    assert server.schema_errors == []


@pytest.fixture
def dotdigital() -> Iterator[FakeDotdigital]:
    with FakeDotdigital(USER, PASSWORD) as server:
        yield server
    assert server.invalid_requests == []
    assert server.internal_errors == []


def retrier(clock: FakeClock) -> Retrier:
    return Retrier(RetryPolicy(3, 60), clock=clock.monotonic, sleep=clock.sleep)


def since(settings: Settings) -> datetime:
    return window_start(datetime.now().astimezone(), settings.task.max_days_to_export)


async def erp_documents(settings: Settings) -> list[OrderDocument]:
    """The ERP's side: the window's valid orders, sorted by order id through a spill."""
    source = DemoErpSource(demo_database_path(settings))
    with document_spill() as spill:
        async for chunk in source.iter_orders(since(settings)):
            spill.add_many(doc for doc in chunk if order_problem(doc) is None)
        await source.close()
        return list(spill.sorted())


async def drift_of(settings: Settings, copy_: SortedSpill[PlatformOrder]) -> list[Drift]:
    with copy_:
        return list(compare(await erp_documents(settings), copy_.sorted()))


async def exported(settings: Settings, state_factory: Any) -> list[OrderDocument]:
    demo(settings, orders=120, days=45)  # a third lie before the window
    result = await make_engine(settings, state_factory(settings)).run()
    assert result.outcome == "succeeded", result.error
    return await erp_documents(settings)


def by_order_and_field(drift: Drift) -> tuple[str, str]:
    return drift.order_id, drift.field or ""


def first_id(docs: list[OrderDocument], wanted: Any) -> str:
    return next(doc["order_id"] for doc in docs if wanted(doc))


def in_window_date(days_ago: int = 1) -> str:
    return (datetime.now().astimezone() - timedelta(days=days_ago)).isoformat(timespec="seconds")


def new_order(docs: list[OrderDocument], order_id: str, **changes: Any) -> OrderDocument:
    doc = copy.deepcopy(docs[0])
    doc.update(order_id=order_id, order_date=in_window_date(), **changes)
    return doc


# --- Mailchimp ------------------------------------------------------------------------------


def mailchimp_destination(settings: Settings) -> MailchimpDestination:
    return MailchimpDestination.from_settings(settings)


async def test_mailchimp_reads_back_a_run_clean_and_names_each_kind_of_drift(
    make_settings, state_factory, mailchimp, fake_clock
) -> None:
    settings = make_settings(**mailchimp_overrides(mailchimp))
    docs = await exported(settings, state_factory)
    destination = mailchimp_destination(settings)
    mailchimp.exchanges.clear()

    assert (
        await drift_of(settings, await destination.read_back(since(settings), retrier(fake_clock)))
        == []
    )

    reads = mailchimp.requests_to("GET", "/orders")
    assert len(reads) == 1  # 120 orders: one page of up to 1,000, only the compared fields
    assert parse_qs(reads[0].query)["count"] == ["1000"]
    assert "orders.financial_status" in parse_qs(reads[0].query)["fields"][0].split(",")
    gone = docs[3]["order_id"]
    changed = first_id(docs[4:], lambda doc: doc["payment_status"] != "refunded")
    shipped = first_id(  # another order: one drift each
        docs[4:], lambda doc: doc["shipping_status"] == "not_shipped" and doc["order_id"] != changed
    )
    mailchimp.remove_order(STORE, gone)
    held = mailchimp.store_orders(STORE)
    mailchimp.put_order(
        STORE, {**held[changed], "financial_status": "refunded", "order_total": 1.5}
    )
    mailchimp.put_order(
        STORE, {**held[shipped], "fulfillment_status": "shipped", "tracking_number": "T-9"}
    )
    mailchimp.put_order(STORE, order_body(new_order(docs, "AA-EXTRA")))  # listed last, sorts first
    mailchimp.put_order(STORE, order_body(new_order(docs, "ZZ-VOID", payment_status="cancelled")))
    mailchimp.put_order(
        STORE,
        {**order_body(new_order(docs, "AB-OLD")), "processed_at_foreign": in_window_date(400)},
    )

    drift = await drift_of(
        settings, await destination.read_back(since(settings), retrier(fake_clock))
    )
    await destination.close()

    before = {doc["order_id"]: doc for doc in docs}
    assert sorted(drift, key=by_order_and_field) == sorted(
        [
            Drift("AA-EXTRA", "extra"),
            Drift(gone, "missing"),
            Drift(
                changed,
                "different",
                "payment_status",
                "refunded",
                before[changed]["payment_status"],
            ),
            Drift(changed, "different", "total", 1.5, before[changed]["total"]),
            Drift(
                shipped,
                "different",
                "shipping_status",
                "shipped",
                before[shipped]["shipping_status"],
            ),
            Drift(
                shipped, "different", "tracking_number", "T-9", before[shipped]["tracking_number"]
            ),
        ],
        key=by_order_and_field,
    )
    assert before[changed]["payment_status"] != "refunded"
    assert before[shipped]["shipping_status"] != "shipped"


async def test_mailchimp_pages_validate_against_the_spec_and_cost_one_request_per_thousand(
    mailchimp, fake_clock
) -> None:
    docs = [new_order([_template()], f"SO-{n:05d}") for n in range(2500)]
    mailchimp.stores[STORE] = {
        "id": STORE,
        "list_id": AUDIENCE,
        "name": "Shop",
        "currency_code": "EUR",
    }
    for doc in reversed(docs):  # the store lists them in its own order, not by id
        mailchimp.put_order(STORE, order_body(doc))
    destination = MailchimpDestination(
        api_key=KEY,
        api_key_env=KEY_ENV,
        store_id=STORE,
        list_id=AUDIENCE,
        store_name="Shop",
        base_url=mailchimp.url,
    )

    with await destination.read_back(
        datetime.now().astimezone() - timedelta(days=2), retrier(fake_clock)
    ) as held:
        ids = [order.order_id for order in held.sorted()]
    await destination.close()

    assert ids == [doc["order_id"] for doc in docs]
    assert len(mailchimp.requests_to("GET", "/orders")) == 3
    auth = httpx.BasicAuth("any", KEY)
    for query in (
        "count=1000&offset=2000",
        "count=2&fields=orders.id,orders.lines.id,total_items",
        "count=3&exclude_fields=orders.lines",
    ):
        answer = httpx.get(f"{mailchimp.url}/ecommerce/stores/{STORE}/orders?{query}", auth=auth)
        assert answer.status_code == 200
        assert_valid_answer(answer.json(), MAILCHIMP, ORDERS_ROUTE, "get", closed=True)
    assert [sorted(order) for order in answer.json()["orders"]] == [
        sorted(key for key in order_body(doc) if key != "lines") for doc in docs[-1:-4:-1]
    ]
    shaped = httpx.get(
        f"{mailchimp.url}/ecommerce/stores/{STORE}/orders?count=2&fields=orders.id,total_items",
        auth=auth,
    ).json()
    assert shaped == {"orders": [{"id": "SO-02499"}, {"id": "SO-02498"}], "total_items": 2500}
    too_many = httpx.get(f"{mailchimp.url}/ecommerce/stores/{STORE}/orders?count=1001", auth=auth)
    assert too_many.status_code == 400
    assert mailchimp.schema_errors and mailchimp.schema_errors[-1][2] == "count"
    mailchimp.schema_errors.clear()
    deleted = httpx.delete(f"{mailchimp.url}/ecommerce/stores/{STORE}/orders/SO-00001", auth=auth)
    assert deleted.status_code == 204 and "SO-00001" not in mailchimp.store_orders(STORE)


async def test_a_mailchimp_store_that_does_not_exist_holds_no_orders(mailchimp, fake_clock) -> None:
    destination = MailchimpDestination(
        api_key=KEY,
        api_key_env=KEY_ENV,
        store_id="nowhere",
        list_id=AUDIENCE,
        store_name="Shop",
        base_url=mailchimp.url,
    )
    with await destination.read_back(datetime.now().astimezone(), retrier(fake_clock)) as held:
        assert list(held.sorted()) == []
    await destination.close()


def _template() -> OrderDocument:
    return copy.deepcopy(VALID)


def from_the_second(suffix: str, method: str = "GET") -> Any:
    """A fault matcher for every request after the first to a path ending in `suffix`."""
    seen = itertools.count()
    return lambda m, path: m == method and path.endswith(suffix) and next(seen) > 0


@pytest.mark.parametrize("page", ["first", "second"])
async def test_mailchimp_read_back_fails_loudly_when_a_page_cannot_be_read(
    mailchimp, fake_clock, page
) -> None:
    mailchimp.stores[STORE] = {
        "id": STORE,
        "list_id": AUDIENCE,
        "name": "Shop",
        "currency_code": "EUR",
    }
    for n in range(1500):
        mailchimp.put_order(STORE, order_body(new_order([_template()], f"SO-{n:05d}")))
    when = from_the_second("/orders") if page == "second" else (lambda m, p: p.endswith("/orders"))
    mailchimp.break_requests(when, 503)
    destination = MailchimpDestination(
        api_key=KEY,
        api_key_env=KEY_ENV,
        store_id=STORE,
        list_id=AUDIENCE,
        store_name="Shop",
        base_url=mailchimp.url,
    )
    with pytest.raises(RetriesExhaustedError, match="503"):
        await destination.read_back(
            datetime.now().astimezone() - timedelta(days=2), retrier(fake_clock)
        )
    await destination.close()


async def test_mailchimp_read_back_waits_out_a_429_and_fails_on_a_refused_key(
    mailchimp, fake_clock
) -> None:
    mailchimp.stores[STORE] = {
        "id": STORE,
        "list_id": AUDIENCE,
        "name": "Shop",
        "currency_code": "EUR",
    }
    mailchimp.put_order(STORE, order_body(new_order([_template()], "SO-1")))
    mailchimp.throttle(2, when=lambda m, p: p.endswith("/orders"))
    policy = retrier(fake_clock)
    destination = MailchimpDestination(
        api_key=KEY,
        api_key_env=KEY_ENV,
        store_id=STORE,
        list_id=AUDIENCE,
        store_name="Shop",
        base_url=mailchimp.url,
    )
    with await destination.read_back(
        datetime.now().astimezone() - timedelta(days=2), policy
    ) as held:
        assert [o.order_id for o in held.sorted()] == ["SO-1"]
    assert policy.retried == 2
    await destination.close()

    wrong = MailchimpDestination(
        api_key="wrong-us7",
        api_key_env=KEY_ENV,
        store_id=STORE,
        list_id=AUDIENCE,
        store_name="Shop",
        base_url=mailchimp.url,
    )
    with pytest.raises(DestinationError, match="refused the API key") as refused:
        await wrong.read_back(datetime.now().astimezone(), retrier(fake_clock))
    assert "wrong-us7" not in str(refused.value)
    await wrong.close()


# --- Dotdigital -----------------------------------------------------------------------------


def dotdigital_destination(url: str) -> DotdigitalDestination:
    return DotdigitalDestination(
        base_url=url,
        api_user=USER,
        password_env=PASSWORD_ENV,
        collection="Orders",
        store_name="Test webstore",
    )


async def test_dotdigital_reads_back_a_run_clean_and_names_each_kind_of_drift(
    make_settings, state_factory, dotdigital, fake_clock
) -> None:
    settings = make_settings(**dotdigital_overrides(dotdigital.url))
    docs = await exported(settings, state_factory)
    destination = dotdigital_destination(dotdigital.url)
    listed_before = dotdigital.count("GET", "/insightData/v3/contacts/Orders")

    assert (
        await drift_of(settings, await destination.read_back(since(settings), retrier(fake_clock)))
        == []
    )

    assert dotdigital.count("GET", "/insightData/v3/contacts/Orders") - listed_before == 1
    before = {doc["order_id"]: doc for doc in docs}
    gone, moved = docs[2]["order_id"], docs[3]["order_id"]
    changed = first_id(
        docs[4:], lambda doc: doc["payment_status"] != "refunded" and doc["currency"] != "USD"
    )
    dotdigital.remove_record(gone)
    record = order_record_json(before[changed], "Test webstore")
    record.update(paymentStatus="refunded", currency="USD", products=record["products"] * 2)
    dotdigital.put_record(before[changed]["customer"]["email"], changed, record)
    old = order_record_json(before[moved], "Test webstore") | {"email": "old@example.com"}
    dotdigital.put_record("old@example.com", moved, old)  # the copy a move left behind
    extra = new_order(docs, "AA-EXTRA")
    dotdigital.put_record(extra["customer"]["email"], "AA-EXTRA", order_record_json(extra, "S"))
    void = new_order(docs, "ZZ-VOID", payment_status="cancelled")
    dotdigital.put_record(void["customer"]["email"], "ZZ-VOID", order_record_json(void, "S"))

    drift = await drift_of(
        settings, await destination.read_back(since(settings), retrier(fake_clock))
    )
    await destination.close()

    lines = len(before[changed]["lines"])
    assert sorted(drift, key=by_order_and_field) == sorted(
        [
            Drift("AA-EXTRA", "extra"),
            Drift(gone, "missing"),
            Drift(
                changed,
                "different",
                "payment_status",
                "refunded",
                before[changed]["payment_status"],
            ),
            Drift(changed, "different", "currency", "USD", before[changed]["currency"]),
            Drift(changed, "different", "line_count", 2 * lines, lines),
            Drift(
                moved, "different", "email", "old@example.com", before[moved]["customer"]["email"]
            ),
        ],
        key=by_order_and_field,
    )
    assert before[changed]["currency"] != "USD"


async def test_dotdigital_pages_validate_against_the_spec_and_a_moved_record_can_be_deleted(
    dotdigital, fake_clock
) -> None:
    docs = [new_order([_template()], f"SO-{n:05d}") for n in range(2500)]
    for doc in reversed(docs):
        dotdigital.put_record(
            doc["customer"]["email"], doc["order_id"], order_record_json(doc, "S")
        )
    destination = dotdigital_destination(dotdigital.url)

    with await destination.read_back(
        datetime.now().astimezone() - timedelta(days=2), retrier(fake_clock)
    ) as held:
        ids = [order.order_id for order in held.sorted()]
    await destination.close()

    assert ids == [doc["order_id"] for doc in docs]
    assert dotdigital.count("GET", "/insightData/v3/contacts/Orders") == 3  # 1,000 a page
    auth = httpx.BasicAuth(USER, PASSWORD)
    listing = f"{dotdigital.url}/insightData/v3/contacts/Orders"
    marker, pages = "", 0
    while True:
        params = {"limit": "5000"} | ({"marker": marker} if marker else {})
        page = httpx.get(listing, params=params, auth=auth)
        assert page.status_code == 200
        assert_valid(page.json(), INSIGHT_SPEC, RECORDS_ANSWER)
        pages += 1
        marker = page.json()["_links"].get("next", {}).get("marker", "")
        if not marker:
            break
    assert pages == 3
    assert httpx.get(listing, params={"limit": "5001"}, auth=auth).status_code == 400
    assert dotdigital.invalid_requests and "limit" in dotdigital.invalid_requests[-1]
    dotdigital.invalid_requests.clear()

    moved = docs[0]
    dotdigital.put_record("new@example.com", moved["order_id"], order_record_json(moved, "S"))
    assert dotdigital.held_by(moved["order_id"]) == sorted(
        [moved["customer"]["email"], "new@example.com"]
    )
    old = moved["customer"]["email"]
    gone = httpx.delete(
        f"{dotdigital.url}/insightData/v3/contacts/email/{old}/Orders/{moved['order_id']}",
        auth=auth,
    )
    assert gone.status_code == 204
    assert dotdigital.held_by(moved["order_id"]) == ["new@example.com"]
    again = httpx.delete(
        f"{dotdigital.url}/insightData/v3/contacts/email/{old}/Orders/{moved['order_id']}",
        auth=auth,
    )
    assert again.status_code == 404 and again.json()["errorCode"] == "insightData:recordNotFound"


async def test_a_dotdigital_collection_that_does_not_exist_holds_no_orders(
    dotdigital, fake_clock
) -> None:
    destination = dotdigital_destination(dotdigital.url)
    with await destination.read_back(datetime.now().astimezone(), retrier(fake_clock)) as held:
        assert list(held.sorted()) == []
    await destination.close()


@pytest.mark.parametrize("page", ["first", "second"])
async def test_dotdigital_read_back_fails_loudly_when_a_page_cannot_be_read(
    dotdigital, fake_clock, page
) -> None:
    for n in range(1500):
        doc = new_order([_template()], f"SO-{n:05d}")
        dotdigital.put_record(
            doc["customer"]["email"], doc["order_id"], order_record_json(doc, "S")
        )
    suffix = "/contacts/Orders"
    when = from_the_second(suffix) if page == "second" else (lambda m, p: p.endswith(suffix))
    dotdigital.break_requests(when, 503)
    destination = dotdigital_destination(dotdigital.url)
    with pytest.raises(RetriesExhaustedError, match="503"):
        await destination.read_back(
            datetime.now().astimezone() - timedelta(days=2), retrier(fake_clock)
        )
    await destination.close()


async def test_dotdigital_read_back_waits_out_a_429_and_fails_on_refused_credentials(
    dotdigital, fake_clock, monkeypatch
) -> None:
    doc = new_order([_template()], "SO-1")
    dotdigital.put_record(doc["customer"]["email"], "SO-1", order_record_json(doc, "S"))
    dotdigital.throttle(2, when=lambda m, p: p.endswith("/contacts/Orders"))
    policy = retrier(fake_clock)
    destination = dotdigital_destination(dotdigital.url)
    with await destination.read_back(
        datetime.now().astimezone() - timedelta(days=2), policy
    ) as held:
        assert [o.order_id for o in held.sorted()] == ["SO-1"]
    assert policy.retried == 2
    await destination.close()

    monkeypatch.setenv(PASSWORD_ENV, "pw-wrong-never-shown")
    wrong = dotdigital_destination(dotdigital.url)
    with pytest.raises(DestinationError, match="did not accept") as refused:
        await wrong.read_back(datetime.now().astimezone(), retrier(fake_clock))
    assert "pw-wrong-never-shown" not in str(refused.value)
    await wrong.close()


# --- the dry-run file ----------------------------------------------------------------------


async def test_the_file_reads_back_its_latest_records_and_names_each_kind_of_drift(
    make_settings, state_factory, fake_clock
) -> None:
    settings = make_settings()
    docs = await exported(settings, state_factory)
    destination = FileDestination(file_path(settings), store_name="Test webstore")

    assert (
        await drift_of(settings, await destination.read_back(since(settings), retrier(fake_clock)))
        == []
    )

    before = {doc["order_id"]: doc for doc in docs}
    gone = docs[1]["order_id"]
    changed = first_id(docs[2:], lambda doc: doc["payment_status"] != "paid")
    lines = file_path(settings).read_text().splitlines()
    kept = []
    for line in lines:  # the deleted order: its records gone from the file
        request = json.loads(line)
        request["body"]["records"] = [r for r in request["body"]["records"] if r["key"] != gone]
        kept.append(json.dumps(request))
    file_path(settings).write_text("\n".join(kept) + "\n")
    later = copy.deepcopy(before[changed]) | {"payment_status": "paid", "tracking_number": "T-1"}
    extra = new_order(docs, "AA-EXTRA")
    await destination.open()
    await destination.send_one(OrderChange(later, "updated", None), retrier(fake_clock))
    await destination.send_batch([OrderChange(extra, "new", None)], retrier(fake_clock))
    await destination.close()
    with file_path(settings).open("a") as file:
        file.write('{"method": "PUT", "path": "/insightData/v3/imp')  # a torn last line

    drift = await drift_of(
        settings, await destination.read_back(since(settings), retrier(fake_clock))
    )

    expected = [
        Drift("AA-EXTRA", "extra"),
        Drift(gone, "missing"),
        Drift(changed, "different", "payment_status", "paid", before[changed]["payment_status"]),
        Drift(changed, "different", "tracking_number", "T-1", before[changed]["tracking_number"]),
    ]
    assert sorted(drift, key=by_order_and_field) == sorted(expected, key=by_order_and_field)


async def test_a_file_line_that_is_no_request_fails_the_read_back(tmp_path, fake_clock) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text('{"method": "PUT", "path": "/somewhere"}\n')
    destination = FileDestination(path, store_name="S")
    with pytest.raises(DestinationError, match="line 1"):
        await destination.read_back(datetime.now().astimezone(), retrier(fake_clock))
    missing = FileDestination(tmp_path / "none.jsonl", store_name="S")
    with await missing.read_back(datetime.now().astimezone(), retrier(fake_clock)) as held:
        assert list(held.sorted()) == []
