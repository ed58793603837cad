"""The Mailchimp destination against the loopback Mailchimp (tests/fakes/mailchimp.py), which
validates every request body against the official spec."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from order_export_tui.destinations.base import DestinationError, OrderChange
from order_export_tui.destinations.mailchimp.destination import (
    HeldForBackfillError,
    MailchimpDestination,
)
from order_export_tui.engine.runner import window_start
from order_export_tui.orders import OrderDocument, order_problem
from order_export_tui.settings import Settings, load_settings
from order_export_tui.sources.demo import DemoErpSource, set_payment_status, ship_order
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.transport.retry import Retrier, RetryPolicy
from tests.conftest import write_settings
from tests.fakes.mailchimp import LostResponse, MailchimpFake
from tests.support.cli import REPO, order_export
from tests.support.demo_erp import demo, expected_orders
from tests.support.engines import make_engine as engine_for
from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, STORE, mailchimp_overrides


@pytest.fixture
def fake() -> Iterator[MailchimpFake]:
    with MailchimpFake(KEY, lists=(AUDIENCE, "aud-other")) as server:
        yield server


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


async def documents(settings: Settings) -> dict[str, OrderDocument]:
    """The valid orders of the export window, by id, straight from the demo ERP."""
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    source = DemoErpSource(demo_database_path(settings))
    found: dict[str, OrderDocument] = {}
    async for chunk in source.iter_orders(start):
        found.update((doc["order_id"], doc) for doc in chunk if order_problem(doc) is None)
    await source.close()
    return found


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def writes_of(fake: MailchimpFake) -> list[tuple[str, str, Any]]:
    return [(e.method, e.path, e.body) for e in fake.writes()]


# --- a run ---------------------------------------------------------------------------------


async def test_a_run_creates_store_customers_products_and_orders_and_a_second_sends_nothing(
    make_settings, state_factory, fake, fake_clock
) -> None:
    settings = make_settings(**mailchimp_overrides(fake), webstore={"name": "Hat Shop"})
    demo(settings)
    docs = await documents(settings)
    engine = engine_for(settings, state_factory(settings), fake_clock)

    first = await engine.run()

    assert first.outcome == "succeeded", first.error
    assert first.counts["new"] == len(docs)
    assert fake.schema_errors == []
    store = fake.stores[STORE]
    assert (store["list_id"], store["name"]) == (AUDIENCE, "Hat Shop")
    orders = fake.store_orders(STORE)
    assert set(orders) == set(docs)
    skus = {line["sku"] for doc in docs.values() for line in doc["lines"]}
    assert {pid for sid, pid in fake.products if sid == STORE} == skus
    customers = {subscriber_hash(doc["customer"]["email"]) for doc in docs.values()}
    assert {cid for sid, cid in fake.customers if sid == STORE} == customers
    # Each product and customer went once, however many orders refer to it.
    assert len(fake.requests_to("POST", "/products")) == len(skus)
    assert len([e for e in fake.writes() if "/customers/" in e.path]) == len(customers)
    sample = next(doc for doc in docs.values() if doc["shipping_status"] == "shipped")
    sent = orders[sample["order_id"]]
    assert sent["order_total"] == sample["total"]
    assert sent["currency_code"] == sample["currency"]
    assert sent["fulfillment_status"] == "shipped"
    assert sent["tracking_number"] == sample["tracking_number"]
    assert [line["product_variant_id"] for line in sent["lines"]] == [
        line["sku"] for line in sample["lines"]
    ]
    unshipped = next(doc for doc in docs.values() if doc["shipping_status"] == "not_shipped")
    assert "fulfillment_status" not in orders[unshipped["order_id"]]
    writes = len(fake.writes())

    second = await engine.run()

    assert second.outcome == "succeeded"
    assert second.counts["unchanged"] == len(docs)
    assert len(fake.writes()) == writes


async def test_a_backfill_runs_with_is_syncing_and_sends_no_automation_emails(
    make_settings, state_factory, fake, fake_clock
) -> None:
    settings = make_settings(**mailchimp_overrides(fake))
    demo(settings, orders=80, malformed=0)
    engine = engine_for(settings, state_factory(settings), fake_clock)

    report = await engine.run()

    assert report.outcome == "succeeded", report.error
    assert fake.syncing_history[STORE] == [True, False]
    orders = fake.store_orders(STORE)
    assert orders and all(order["created_while_syncing"] for order in orders.values())
    assert fake.notifications == []


async def test_is_syncing_is_cleared_after_a_failed_run(
    make_settings, state_factory, fake, fake_clock
) -> None:
    settings = make_settings(**mailchimp_overrides(fake))
    demo(settings, orders=60, malformed=0)
    fake.break_requests(lambda method, path: method == "POST" and path.endswith("/orders"))
    engine = engine_for(settings, state_factory(settings), fake_clock)

    report = await engine.run()

    assert report.outcome == "failed"
    assert f"POST /ecommerce/stores/{STORE}/orders failed after" in report.error
    assert fake.syncing_history[STORE] == [True, False]


async def test_a_syncing_flag_left_by_a_killed_run_is_cleared_by_the_next_run(
    make_settings, state_factory, fake, fake_clock
) -> None:
    settings = make_settings(**mailchimp_overrides(fake))
    demo(settings, orders=40, malformed=0)
    engine = engine_for(settings, state_factory(settings), fake_clock)
    await engine.run()
    with fake.lock:
        fake.stores[STORE]["is_syncing"] = True  # as a SIGKILL mid-backfill leaves it
    writes = len(fake.writes())

    report = await engine.run()  # nothing to send

    assert report.outcome == "succeeded"
    assert fake.stores[STORE]["is_syncing"] is False
    assert [(e.method, e.path) for e in fake.writes()[writes:]] == [
        ("PATCH", f"/ecommerce/stores/{STORE}")
    ]


# --- updates ----------------------------------------------------------------------------------


async def test_a_shipped_order_becomes_a_patch_with_fulfillment_status_and_tracking(
    make_settings, state_factory, fake, fake_clock
) -> None:
    settings = make_settings(**mailchimp_overrides(fake))
    demo(settings)
    engine = engine_for(settings, state_factory(settings), fake_clock)
    await engine.run()
    docs = await documents(settings)
    order_id = next(
        i
        for i, doc in docs.items()
        if doc["shipping_status"] == "not_shipped" and doc["shipping_method"] != "DHL"
    )
    writes = len(fake.writes())

    # Shipped by another carrier than the order's shipping method names.
    ship_order(demo_database_path(settings), order_id, carrier="DHL", tracking_number="TRACK-42")
    report = await engine.run()

    assert report.counts["updated"] == 1
    shipped = (await documents(settings))[order_id]
    assert writes_of(fake)[writes:] == [
        (
            "PATCH",
            f"/ecommerce/stores/{STORE}/orders/{order_id}",
            {
                "fulfillment_status": "shipped",
                "tracking_number": "TRACK-42",
                "tracking_url": shipped["tracking_url"],
                "tracking_carrier": "DHL",  # the shipment's carrier, whatever the method
            },
        )
    ]
    assert fake.store_orders(STORE)[order_id]["fulfillment_status"] == "shipped"
    assert ("shipping_confirmation", order_id) in fake.notifications  # no backfill: e-mails on
    assert fake.schema_errors == []


@pytest.mark.parametrize(
    ("before", "after", "financial_status"),
    [("pending", "paid", "paid"), ("paid", "failed", "failed")],
)
async def test_a_payment_status_change_becomes_a_patch_with_the_financial_status(
    make_settings, state_factory, fake, fake_clock, before, after, financial_status
) -> None:
    settings = make_settings(**mailchimp_overrides(fake))
    demo(settings)
    engine = engine_for(settings, state_factory(settings), fake_clock)
    await engine.run()
    docs = await documents(settings)
    order_id = next(i for i, doc in docs.items() if doc["payment_status"] == before)
    writes = len(fake.writes())

    set_payment_status(demo_database_path(settings), order_id, after)
    report = await engine.run()

    assert report.counts["updated"] == 1
    assert writes_of(fake)[writes:] == [
        (
            "PATCH",
            f"/ecommerce/stores/{STORE}/orders/{order_id}",
            {"financial_status": financial_status},
        )
    ]
    assert fake.store_orders(STORE)[order_id]["financial_status"] == financial_status


async def test_an_update_of_an_order_mailchimp_lost_creates_it_again(
    make_settings, state_factory, fake, fake_clock
) -> None:
    settings = make_settings(**mailchimp_overrides(fake))
    demo(settings)
    engine = engine_for(settings, state_factory(settings), fake_clock)
    await engine.run()
    docs = await documents(settings)
    order_id = next(i for i, doc in docs.items() if doc["payment_status"] == "pending")
    with fake.lock:
        del fake.orders[(STORE, order_id)]

    set_payment_status(demo_database_path(settings), order_id, "paid")
    report = await engine.run()

    assert report.counts["updated"] == 1
    order = fake.store_orders(STORE)[order_id]
    assert (order["financial_status"], order["order_total"]) == ("paid", docs[order_id]["total"])


# --- what goes wrong ------------------------------------------------------------------------


async def test_an_order_whose_product_cannot_be_created_is_skipped_and_blocks_nothing(
    make_settings, state_factory, fake, fake_clock
) -> None:
    settings = make_settings(**mailchimp_overrides(fake), task={"max_items_to_skip": 100})
    demo(settings)
    docs = await documents(settings)
    sku = docs[min(docs)]["lines"][0]["sku"]
    fake.refuse_product(sku, "variants.0.image_url", "The image URL is not valid")
    blocked = {i for i, doc in docs.items() if any(ln["sku"] == sku for ln in doc["lines"])}
    state = state_factory(settings)

    report = await engine_for(settings, state, fake_clock).run()

    assert report.outcome == "succeeded"
    assert set(fake.store_orders(STORE)) == set(docs) - blocked
    reasons = {s.order_id: s.reason for s in state.skipped_orders() if s.order_id in docs}
    assert set(reasons) == blocked
    for reason in reasons.values():
        assert f"product {sku} could not be created" in reason
        assert "variants.0.image_url: The image URL is not valid" in reason
    assert len(fake.requests_to("POST", "/products")) == len(
        {line["sku"] for doc in docs.values() for line in doc["lines"]}
    )  # the refused product was tried once, not once per order


async def test_5xx_429_and_dropped_connections_still_deliver_every_order(
    make_settings, state_factory, fake_clock
) -> None:
    with MailchimpFake(KEY, lists=(AUDIENCE,), fail_rate=0.15, seed=7) as fake:
        settings = make_settings(**mailchimp_overrides(fake), task={"max_retries": 10})
        demo(settings)
        docs = await documents(settings)
        # At least one order whose creation succeeds but whose answer is lost.
        fake.plan(
            LostResponse(drop=True),
            when=lambda method, path: method == "POST" and path.endswith("/orders"),
        )
        state = state_factory(settings)

        report = await engine_for(settings, state, fake_clock).run()

    assert report.outcome == "succeeded", report.error
    orders = fake.store_orders(STORE)
    assert set(orders) == set(docs)
    assert all(orders[i]["order_total"] == doc["total"] for i, doc in docs.items())
    assert {s.order_id for s in state.skipped_orders()} & set(docs) == set()
    assert fake.already_exists >= 1  # the lost answer: the order was updated, not skipped
    assert fake.schema_errors == []
    faulted = [e for e in fake.exchanges if e.status in (0, 429, 503)]
    assert {e.status for e in faulted} == {0, 429, 503}
    opening = [e for e in faulted if e.method == "GET"]  # retried by the destination's own policy
    assert report.counts["retried"] == len(faulted) - len(opening)


async def test_never_more_requests_in_flight_than_max_connections(
    make_settings, state_factory, fake_clock
) -> None:
    with MailchimpFake(KEY, lists=(AUDIENCE,), latency=0.01) as fake:
        settings = make_settings(**mailchimp_overrides(fake, max_connections=3))
        demo(settings, orders=120, malformed=0)

        report = await engine_for(settings, state_factory(settings), fake_clock).run()

    assert report.outcome == "succeeded", report.error
    assert fake.max_in_flight == 3
    assert all(e.status != 429 for e in fake.exchanges)


async def test_real_time_sends_during_a_backfill_are_held_until_it_ends_and_not_silenced(
    make_settings, state_factory, fake_clock
) -> None:
    """Real-time sends during a backfill (another instance, same key and store) stay within
    the one connection limit, leave the backfill's `is_syncing` flag alone, and go only once
    the flag is false again, so their order confirmations fire."""
    with MailchimpFake(KEY, lists=(AUDIENCE,), latency=0.01) as fake:
        overrides = mailchimp_overrides(fake, max_connections=2)
        settings = make_settings(**overrides, task={"batch_size": 10})  # requests interleave
        demo(settings, orders=100, malformed=0)
        docs = list((await documents(settings)).values())
        real_time_docs = [{**doc, "order_id": "RT-" + doc["order_id"]} for doc in docs[:20]]
        real_time = MailchimpDestination.from_settings(settings)
        retrier = Retrier(RetryPolicy(3, 60))

        async def send_real_time() -> list[str | None]:
            while not fake.stores.get(STORE, {}).get("is_syncing"):
                await asyncio.sleep(0.005)
            await real_time.open()
            try:
                changes = [OrderChange(doc, "new", None) for doc in real_time_docs]
                return await asyncio.gather(*(real_time.send_one(c, retrier) for c in changes))
            finally:
                await real_time.close()

        engine = engine_for(settings, state_factory(settings), fake_clock)
        report, reasons = await asyncio.gather(engine.run(), send_real_time())

    assert report.outcome == "succeeded", report.error
    assert reasons == [None] * 20
    assert fake.max_in_flight == 2
    assert fake.syncing_history[STORE] == [True, False]
    orders = fake.store_orders(STORE)
    for doc in real_time_docs:
        assert orders[doc["order_id"]]["created_while_syncing"] is False
        assert ("order_confirmation", doc["order_id"]) in fake.notifications
    assert all(orders[doc["order_id"]]["created_while_syncing"] for doc in docs)


async def test_a_real_time_send_held_longer_than_its_bound_is_handed_back_to_the_queue(
    make_settings, state_factory, fake_clock
) -> None:
    # A backfill long enough (300 orders, 20 ms a request) for the real-time send to meet it,
    # with a second connection so that the real-time send's own requests are not queued
    # behind the backfill's until it ends.
    with MailchimpFake(KEY, lists=(AUDIENCE,), latency=0.02) as fake:
        settings = make_settings(**mailchimp_overrides(fake, max_connections=2))
        demo(settings, orders=300, malformed=0)
        doc = {**next(iter((await documents(settings)).values())), "order_id": "RT-1"}
        real_time = MailchimpDestination.from_settings(settings)
        real_time.hold_seconds = 0.01

        async def send_real_time() -> BaseException | str | None:
            while not fake.stores.get(STORE, {}).get("is_syncing"):
                await asyncio.sleep(0.005)
            await real_time.open()
            try:
                change = OrderChange(doc, "new", None)
                return await real_time.send_one(change, Retrier(RetryPolicy(0, 0)))
            except HeldForBackfillError as error:
                return error
            finally:
                await real_time.close()

        engine = engine_for(settings, state_factory(settings), fake_clock)
        report, outcome = await asyncio.gather(engine.run(), send_real_time())

    assert report.outcome == "succeeded", report.error
    assert isinstance(outcome, HeldForBackfillError)
    assert "RT-1" not in fake.store_orders(STORE)


async def test_send_one_upserts_a_single_order_without_touching_is_syncing(
    make_settings, fake
) -> None:
    settings = make_settings(**mailchimp_overrides(fake))
    demo(settings, orders=20, malformed=0)
    doc = dict(next(iter((await documents(settings)).values())))
    doc["customer"] = {**doc["customer"], "id": "webstore-guest-" + "x" * 60}
    doc["payment_status"] = "failed"
    destination = MailchimpDestination.from_settings(settings)
    retrier = Retrier(RetryPolicy(3, 60))
    await destination.open()
    try:
        reason = await destination.send_one(OrderChange(doc, "new", None), retrier)
    finally:
        await destination.close()

    assert reason is None
    order = fake.store_orders(STORE)[doc["order_id"]]
    customer_id = subscriber_hash(doc["customer"]["email"])
    assert order["customer"]["id"] == customer_id
    assert (STORE, customer_id) in fake.customers
    assert order["financial_status"] == "failed"
    assert fake.syncing_history[STORE] == [False]
    assert ("order_confirmation", doc["order_id"]) in fake.notifications
    assert fake.schema_errors == []


# --- check --connect ----------------------------------------------------------------------------


@pytest.mark.parametrize("store_exists", [False, True], ids=["no store yet", "store exists"])
async def test_check_connection_accepts_what_is_right(make_settings, fake, store_exists) -> None:
    if store_exists:
        with fake.lock:
            fake.stores[STORE] = {"id": STORE, "list_id": AUDIENCE, "is_syncing": False}
    stores_before = {key: dict(store) for key, store in fake.stores.items()}
    settings = make_settings(**mailchimp_overrides(fake))
    destination = MailchimpDestination.from_settings(settings)
    try:
        reached = await destination.check_connection()
    finally:
        await destination.close()
    audience = f"audience Audience {AUDIENCE} ({AUDIENCE}) at {fake.url}"
    if store_exists:
        assert reached == f"Mailchimp store {STORE} ({STORE}), {audience}"
    else:
        assert reached == f"Mailchimp {audience}; store {STORE} is created by the first export"

    # It read the key, the audience and the store, with the key accepted, and changed nothing.
    assert [(e.method, e.path, e.status) for e in fake.exchanges] == [
        ("GET", "/ping", 200),
        ("GET", f"/lists/{AUDIENCE}", 200),
        ("GET", f"/ecommerce/stores/{STORE}", 200 if store_exists else 404),
    ]
    assert fake.writes() == []
    assert fake.stores == stores_before


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("wrong key", f"refused the API key in {KEY_ENV}"),
        ("unknown audience", "mailchimp.list_id: there is no audience 'nope'"),
        ("store on another audience", "connected to audience 'aud-other'"),
    ],
)
async def test_check_connection_names_what_is_wrong(
    make_settings, fake, monkeypatch, setup, expected
) -> None:
    overrides = {}
    if setup == "wrong key":
        monkeypatch.setenv(KEY_ENV, "0000-us7")
    elif setup == "unknown audience":
        overrides = {"list_id": "nope"}
    else:
        with fake.lock:
            fake.stores[STORE] = {"id": STORE, "list_id": "aud-other", "is_syncing": False}
    settings = make_settings(**mailchimp_overrides(fake, **overrides))
    destination = MailchimpDestination.from_settings(settings)

    with pytest.raises(DestinationError) as raised:
        await destination.check_connection()
    await destination.close()

    assert expected in str(raised.value)
    assert KEY not in str(raised.value)


# --- the real command ------------------------------------------------------------------------


def places_showing(
    secret: str, result: subprocess.CompletedProcess[str], folder: Path
) -> list[str]:
    """Where `secret` (or its part before the data centre) shows in the command's output or
    the run logs."""
    places = {"stdout": result.stdout, "stderr": result.stderr}
    for log_file in (folder / "logs").glob("*"):
        places[log_file.name] = log_file.read_text()
    bare = secret.rpartition("-")[0]
    return [name for name, text in places.items() if bare in text]


def test_a_wrong_key_fails_the_run_at_once_with_a_clear_message(tmp_path: Path, fake) -> None:
    write_settings(tmp_path, mailchimp_overrides(fake))
    order_export("demo", "--orders", "50", cwd=tmp_path)

    wrong = "0123456789abcdef-us7"

    result = order_export("run", "--json", cwd=tmp_path, env={KEY_ENV: wrong})

    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert f"Mailchimp refused the API key in {KEY_ENV}" in error
    assert fake.attempts <= 2
    assert places_showing(wrong, result, tmp_path) == []


def test_sigkill_mid_run_then_a_full_run_leaves_no_duplicate_and_no_skip(tmp_path: Path) -> None:
    with MailchimpFake(KEY, lists=(AUDIENCE,), latency=0.002) as fake:
        settings = load_settings(
            write_settings(tmp_path, {**mailchimp_overrides(fake), "task": {"batch_size": 50}})
        )
        assert order_export("demo", "--orders", "1500", cwd=tmp_path).returncode == 0
        valid, malformed = asyncio.run(expected_orders(settings))
        env = {**os.environ, "PYTHONPATH": str(REPO), KEY_ENV: KEY}

        for sent_before_kill in (250, 600):
            process = subprocess.Popen(
                [sys.executable, "-m", "order_export_tui", "run"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_until(lambda n=sent_before_kill: len(fake.store_orders(STORE)) >= n)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            # The first run is the backfill (the store held no orders) and a kill leaves its
            # flag set; the second clears it on opening and, the store holding orders now,
            # is no backfill.
            assert fake.stores[STORE]["is_syncing"] is (sent_before_kill == 250)
        assert 0 < len(fake.store_orders(STORE)) < len(valid)  # killed mid-run
        assert fake.syncing_history[STORE][:2] == [True, False]

        final = order_export("run", "--json", cwd=tmp_path, env={KEY_ENV: KEY})

        assert final.returncode == 0, final.stderr
        report = json.loads(final.stdout)
        assert report["counts"]["skipped"] == len(malformed)
        orders = fake.store_orders(STORE)
        assert set(orders) == valid
        with sqlite3.connect(settings.state_database_path) as db:
            skipped = {row[0] for row in db.execute("SELECT order_id FROM skipped_order")}
            exported = [row[0] for row in db.execute("SELECT order_id FROM exported_order")]
        assert skipped == malformed  # no "already exists" skip
        assert sorted(exported) == sorted(valid)
        assert fake.already_exists > 0  # orders sent before a kill were updated, not doubled
        assert fake.stores[STORE]["is_syncing"] is False
        assert fake.schema_errors == []
        assert places_showing(KEY, final, tmp_path) == []


def wait_until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
