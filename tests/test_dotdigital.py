"""The Dotdigital destination against the loopback fake built from the official specs."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from order_export_tui.destinations.base import DestinationError, OrderChange
from order_export_tui.destinations.dotdigital.destination import DotdigitalDestination
from order_export_tui.destinations.dotdigital.records import order_record_json
from order_export_tui.engine.runner import window_start
from order_export_tui.orders import OrderDocument, order_problem
from order_export_tui.settings import Settings, load_settings
from order_export_tui.sources.demo import DemoErpSource, ship_order
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.transport.retry import Retrier, RetryPolicy
from tests.conftest import FakeClock, write_settings
from tests.fakes.dotdigital import CONTACTS_SPEC, INSIGHT_SPEC, FakeDotdigital, Faults
from tests.support.cli import REPO, order_export
from tests.support.demo_erp import demo, expected_orders
from tests.support.dotdigital_account import PASSWORD, PASSWORD_ENV, USER, dotdigital_overrides
from tests.support.engines import make_engine
from tests.support.specs import assert_valid

WRONG_PASSWORD = "pw-wrong-also-never-shown"


@pytest.fixture
def fake() -> Iterator[FakeDotdigital]:
    with FakeDotdigital(USER, PASSWORD) as server:
        yield server
    assert server.internal_errors == []


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


async def valid_orders(settings: Settings) -> list[OrderDocument]:
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    source = DemoErpSource(demo_database_path(settings))
    found = [doc async for chunk in source.iter_orders(start) for doc in chunk]
    await source.close()
    return [doc for doc in found if order_problem(doc) is None]


def destination(url: str, **options: Any) -> DotdigitalDestination:
    return DotdigitalDestination(
        base_url=url,
        api_user=USER,
        password_env=PASSWORD_ENV,
        collection="Orders",
        store_name="Test webstore",
        **options,
    )


def retrier(clock: FakeClock) -> Retrier:
    return Retrier(RetryPolicy(3, 60), clock=clock.monotonic, sleep=clock.sleep)


# --- whole runs through the engine ------------------------------------------------------------


async def test_a_run_exports_every_in_window_order_once_in_valid_bodies(
    fake, make_settings, state_factory
) -> None:
    settings = make_settings(**dotdigital_overrides(fake.url))
    demo(settings, days=45)  # a third of the orders lie outside the 30-day window
    valid, malformed = await expected_orders(settings)
    state = state_factory(settings)
    engine = make_engine(settings, state)

    first = await engine.run()

    assert first.outcome == "succeeded", first.error
    assert set(fake.records()) == valid
    assert all(fake.write_count(order_id) == 1 for order_id in valid)
    assert first.counts["new"] == len(valid)
    assert first.counts["skipped"] == len(malformed) > 0
    assert fake.invalid_requests == []  # every body validated against the official schema
    one = (await valid_orders(settings))[0]
    assert fake.records()[one["order_id"]] == order_record_json(one, "Test webstore")
    # bulk all the way: one Insight import per batch of 50, never a request per order
    batches = -(-first.counts["read"] // 50)
    assert fake.count("PUT", "/insightData/v3/import") == batches
    assert fake.count("PUT", "/insightData/v3/contacts") == 0

    second = await engine.run()

    assert second.outcome == "succeeded"
    assert second.counts["unchanged"] == len(valid)
    assert fake.count("PUT", "/insightData/v3/import") == batches  # nothing sent again


async def test_a_status_change_upserts_the_same_record(fake, make_settings, state_factory) -> None:
    settings = make_settings(**dotdigital_overrides(fake.url))
    demo(settings)
    engine = make_engine(settings, state_factory(settings))
    await engine.run()
    order_id = next(
        key for key, record in fake.records().items() if record["shippingStatus"] == "not_shipped"
    )
    records_before = len(fake.records())

    ship_order(demo_database_path(settings), order_id, tracking_number="TRACK-42")
    report = await engine.run()

    assert report.outcome == "succeeded", report.error
    assert report.counts["updated"] == 1
    assert fake.write_count(order_id) == 2
    assert len(fake.records()) == records_before  # still one record for that key
    assert fake.records()[order_id]["shippingStatus"] == "shipped"
    assert fake.records()[order_id]["trackingNumber"] == "TRACK-42"


async def test_unknown_contacts_are_created_in_bulk(fake, make_settings, state_factory) -> None:
    settings = make_settings(**dotdigital_overrides(fake.url, create_missing_contacts=True))
    demo(settings)
    orders = await valid_orders(settings)
    emails = {doc["customer"]["email"] for doc in orders}

    report = await make_engine(settings, state_factory(settings)).run()

    assert report.outcome == "succeeded", report.error
    assert report.counts["new"] == len(orders)
    assert all(fake.has_contact(email) for email in emails)
    batches = -(-len(orders) // 50)
    assert fake.count("PUT", "/contacts/v3/import") <= batches  # one import per batch at most
    assert fake.count("PATCH", "/contacts/v3") == 0
    assert fake.invalid_requests == []


async def test_a_contact_dotdigital_will_not_create_skips_its_orders_with_both_reasons(
    fake, make_settings, state_factory
) -> None:
    settings = make_settings(**dotdigital_overrides(fake.url))
    demo(settings, malformed=0)
    orders = await valid_orders(settings)
    email = orders[5]["customer"]["email"]
    fake.refuse_contacts[email.lower()] = ("consentRecordsNotApplied", "Bad consent records")
    theirs = {doc["order_id"] for doc in orders if doc["customer"]["email"] == email}
    state = state_factory(settings)

    report = await make_engine(settings, state).run()

    assert report.outcome == "succeeded", report.error
    skipped = {s.order_id: s.reason for s in state.skipped_orders()}
    assert set(skipped) == theirs
    for reason in skipped.values():
        assert reason.startswith("rejected by dotdigital: ContactEmailDoesNotExist")
        assert "consentRecordsNotApplied: Bad consent records" in reason
    assert set(fake.records()) == {doc["order_id"] for doc in orders} - theirs


async def test_orders_of_unknown_contacts_are_skipped_with_the_platforms_reason(
    fake, make_settings, state_factory
) -> None:
    overrides = dotdigital_overrides(fake.url, create_missing_contacts=False)
    settings = make_settings(task={"max_items_to_skip": 100_000}, **overrides)
    demo(settings, malformed=0)
    orders = await valid_orders(settings)
    known = {doc["customer"]["email"] for doc in orders[::2]}
    for email in known:
        fake.add_contact(email)
    unknown = {doc["order_id"] for doc in orders if doc["customer"]["email"] not in known}
    state = state_factory(settings)

    report = await make_engine(settings, state).run()

    assert report.outcome == "succeeded", report.error
    assert set(fake.records()) == {doc["order_id"] for doc in orders} - unknown
    skipped = {s.order_id: s.reason for s in state.skipped_orders()}
    assert set(skipped) == unknown
    assert all("ContactEmailDoesNotExist" in reason for reason in skipped.values())
    assert fake.count("PUT", "/contacts/v3/import") == 0  # nobody was created


async def test_import_failures_become_skips_with_their_reason_and_are_tried_again(
    fake, make_settings, state_factory
) -> None:
    settings = make_settings(**dotdigital_overrides(fake.url))
    demo(settings, malformed=0)
    orders = await valid_orders(settings)
    failing = {orders[3]["order_id"], orders[77]["order_id"]}
    for order_id in failing:
        fake.fail_keys[order_id] = (
            "JsonValueIncompatibleWithSchema",
            ["Field 'orderTotal' is expected to be a number"],
        )
    state = state_factory(settings)
    engine = make_engine(settings, state)

    first = await engine.run()

    assert first.outcome == "succeeded", first.error
    assert first.counts["skipped"] == 2
    skipped = {s.order_id: s.reason for s in state.skipped_orders()}
    assert skipped == {
        order_id: "rejected by dotdigital: JsonValueIncompatibleWithSchema:"
        " Field 'orderTotal' is expected to be a number"
        for order_id in failing
    }
    assert failing.isdisjoint(fake.records())

    fake.fail_keys.clear()
    second = await engine.run()

    assert second.counts["new"] == 2
    assert state.skipped_orders() == []
    assert failing <= set(fake.records())


async def test_5xx_429_bursts_and_dropped_connections_still_deliver_everything(
    make_settings, state_factory, fake_clock
) -> None:
    faults = Faults(
        fail_rate=0.2, drop_rate=0.06, burst_every=17, burst_length=2, burst_reset_seconds=7, seed=5
    )
    with FakeDotdigital(USER, PASSWORD, faults=faults) as fake:
        settings = make_settings(
            # small batches: well over a hundred requests, so every kind of fault shows up
            task={"batch_size": 10, "max_retries": 12, "max_retry_interval_seconds": 3600},
            **dotdigital_overrides(fake.url),
        )
        demo(settings, malformed=0)
        valid, _ = await expected_orders(settings)

        report = await make_engine(settings, state_factory(settings), fake_clock).run()

    assert report.outcome == "succeeded", report.error
    assert set(fake.records()) == valid
    failed_answers = [seen for seen in fake.requests if seen.status is None or seen.status >= 429]
    assert {429, 500, 502, 503, None} <= {seen.status for seen in failed_answers}
    assert report.counts["retried"] == len(failed_answers)  # one retry per failed answer
    assert 7.0 in fake_clock.sleeps  # the rate-limit reset was honoured
    assert fake.invalid_requests == []
    assert fake.internal_errors == []


async def test_a_failed_import_is_submitted_again_and_complete_means_done(
    fake, make_settings, state_factory
) -> None:
    settings = make_settings(**dotdigital_overrides(fake.url))
    demo(settings, orders=60, malformed=0)
    valid, _ = await expected_orders(settings)
    fake.failed_imports_left = 1
    fake.finished_status = "Complete"  # the spec's enum spelling

    report = await make_engine(settings, state_factory(settings)).run()

    assert report.outcome == "succeeded", report.error
    assert report.counts["retried"] == 1
    assert set(fake.records()) == valid


async def test_the_flat_rate_limit_answer_is_retried(fake, make_settings, state_factory) -> None:
    settings = make_settings(**dotdigital_overrides(fake.url))
    demo(settings, orders=60, malformed=0)
    valid, _ = await expected_orders(settings)
    fake.usage_exceeded_left = 2  # 400 ERROR_APIUSAGE_EXCEEDED twice

    clock = FakeClock()
    report = await make_engine(settings, state_factory(settings), clock).run()

    assert report.outcome == "succeeded", report.error
    assert report.counts["retried"] == 2
    assert set(fake.records()) == valid


async def test_a_bulk_import_dotdigital_refuses_fails_the_run_with_its_error_code(
    fake, make_settings, state_factory
) -> None:
    settings = make_settings(**dotdigital_overrides(fake.url, collection="bad name!"))
    demo(settings, orders=30, malformed=0)

    report = await make_engine(settings, state_factory(settings)).run()

    assert report.outcome == "failed"
    assert "Dotdigital refused the Insight data import" in report.error
    assert "insightData:validationFailed" in report.error
    assert report.counts["retried"] == 0
    assert fake.count("PUT", "/insightData/v3/import") == 1


# --- the destination on its own -----------------------------------------------------------------


async def test_concurrent_batches_share_the_contacts_and_never_run_more_than_five_imports(
    fake, make_settings, fake_clock
) -> None:
    settings = make_settings()
    demo(settings, orders=1200, malformed=0)
    orders = await valid_orders(settings)
    batches = [orders[i : i + 50] for i in range(0, 400, 50)]
    dotdigital = destination(fake.url)
    await dotdigital.open()
    try:
        results = await asyncio.gather(
            *(
                dotdigital.send_batch(
                    [OrderChange(doc, "new", None) for doc in batch], retrier(fake_clock)
                )
                for batch in batches
            )
        )
    finally:
        await dotdigital.close()

    assert results == [{}] * len(batches)
    assert set(fake.records()) == {doc["order_id"] for batch in batches for doc in batch}
    assert fake.peak_active_imports <= 5
    assert fake.count("GET", "/insightData/v3/collections") == 1  # credentials checked once
    assert all(seen.status != 429 for seen in fake.requests)


async def test_a_slow_import_is_not_polled_in_vain_the_next_time(
    fake, make_settings, fake_clock
) -> None:
    fake.import_seconds = 0.3
    settings = make_settings()
    demo(settings, orders=40, malformed=0)
    orders = await valid_orders(settings)
    for doc in orders:
        fake.add_contact(doc["customer"]["email"])
    dotdigital = destination(fake.url, create_missing_contacts=False)
    polls = []
    await dotdigital.open()
    try:
        for batch in (orders[:10], orders[10:20]):
            before = fake.count("GET", "/insightData/v3/import/")
            changes = [OrderChange(doc, "new", None) for doc in batch]
            assert await dotdigital.send_batch(changes, retrier(fake_clock)) == {}
            polls.append(fake.count("GET", "/insightData/v3/import/") - before)
    finally:
        await dotdigital.close()

    assert polls[0] >= 3  # short first waits that grow: a fast import is seen at once
    assert polls[1] < polls[0]  # the next import's first poll waits about as long as it takes
    assert set(fake.records()) == {doc["order_id"] for doc in orders[:20]}


async def test_send_one_upserts_one_record(fake, make_settings, fake_clock) -> None:
    settings = make_settings()
    demo(settings, orders=20, malformed=0)
    order = (await valid_orders(settings))[0]
    change = OrderChange(order, "new", None)
    dotdigital = destination(fake.url)
    await dotdigital.open()
    try:
        assert await dotdigital.send_one(change, retrier(fake_clock)) is None
        changed = {**order, "payment_status": "paid"}
        assert (
            await dotdigital.send_one(OrderChange(changed, "updated", None), retrier(fake_clock))
            is None
        )
    finally:
        await dotdigital.close()

    assert fake.records() == {order["order_id"]: order_record_json(changed, "Test webstore")}
    assert fake.write_count(order["order_id"]) == 2
    assert fake.count("POST", "/insightData/v3/collections/Orders") == 1  # ensured once
    assert fake.count("PATCH", "/contacts/v3/email/") == 1  # the contact, once
    assert fake.has_contact(order["customer"]["email"])
    assert fake.invalid_requests == []


async def test_send_one_returns_the_reason_for_an_unknown_contact(
    fake, make_settings, fake_clock
) -> None:
    settings = make_settings()
    demo(settings, orders=20, malformed=0)
    order = (await valid_orders(settings))[0]
    dotdigital = destination(fake.url, create_missing_contacts=False)
    await dotdigital.open()
    try:
        reason = await dotdigital.send_one(OrderChange(order, "new", None), retrier(fake_clock))
    finally:
        await dotdigital.close()

    assert reason is not None
    assert "insightData:contactNotFound" in reason
    assert order["customer"]["email"] in reason
    assert fake.records() == {}


async def test_check_connection_proves_the_credentials(fake) -> None:
    dotdigital = destination(fake.url)
    try:
        reached = await dotdigital.check_connection()
    finally:
        await dotdigital.close()
    assert fake.count("GET", "/insightData/v3/collections") == 1
    assert reached == (
        f"Dotdigital at {fake.url} as API user {USER},"
        " Insight data collection Orders (created by the first export)"
    )


async def test_a_wrong_password_is_named_by_its_variable_and_makes_no_more_requests(
    fake, make_settings, monkeypatch, fake_clock
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, WRONG_PASSWORD)
    settings = make_settings()
    demo(settings, orders=20, malformed=0)
    order = (await valid_orders(settings))[0]
    dotdigital = destination(fake.url)
    await dotdigital.open()
    try:
        with pytest.raises(DestinationError) as refused:
            await asyncio.gather(
                *(
                    dotdigital.send_batch([OrderChange(order, "new", None)], retrier(fake_clock))
                    for _ in range(5)
                )
            )
        with pytest.raises(DestinationError):
            await dotdigital.send_one(OrderChange(order, "new", None), retrier(fake_clock))
    finally:
        await dotdigital.close()

    message = str(refused.value)
    assert "HTTP 401" in message and USER in message and PASSWORD_ENV in message
    assert WRONG_PASSWORD not in message
    assert len(fake.requests) == 1  # five batches in flight, one request


async def test_a_403_points_at_the_region(fake) -> None:
    fake.wrong_region = True
    dotdigital = destination(fake.url, region="r2")
    try:
        with pytest.raises(DestinationError) as refused:
            await dotdigital.check_connection()
    finally:
        await dotdigital.close()
    assert "HTTP 403" in str(refused.value)
    assert "dotdigital.base_url" in str(refused.value)  # a custom URL is what to check here
    assert len(fake.requests) == 1


async def test_the_fakes_import_reports_follow_the_spec(fake, make_settings, fake_clock) -> None:
    settings = make_settings()
    demo(settings, orders=20, malformed=0)
    orders = await valid_orders(settings)
    fake.fail_keys[orders[0]["order_id"]] = ("InvalidJson", ["Unexpected character"])
    fake.finished_status = "Complete"  # the spec's example says Finished, its enum Complete
    dotdigital = destination(fake.url)
    await dotdigital.open()
    reports: list[tuple[str, dict[str, Any]]] = []
    original = dotdigital._import_status

    async def recorded(kind: Any, import_id: str, retrier: Retrier) -> dict[str, Any]:
        report = await original(kind, import_id, retrier)
        reports.append((kind.what, report))
        return report

    dotdigital._import_status = recorded  # type: ignore[method-assign]
    try:
        await dotdigital.send_batch(
            [OrderChange(doc, "new", None) for doc in orders], retrier(fake_clock)
        )
    finally:
        await dotdigital.close()

    finished = {
        what: report for what, report in reports if report["status"] in ("Finished", "Complete")
    }
    assert set(finished) == {"contacts import", "Insight data import"}
    assert_valid(
        finished["contacts import"], CONTACTS_SPEC, "#/components/schemas/inline_response_200_2"
    )
    assert_valid(
        finished["Insight data import"], INSIGHT_SPEC, "#/components/schemas/inline_response_200"
    )
    assert finished["Insight data import"]["failures"][0]["key"] == orders[0]["order_id"]


async def test_the_fake_refuses_what_dotdigital_refuses(fake) -> None:
    record = {
        "key": "SO-1",
        "contactIdentity": {"identifier": "email", "value": "jane@example.com"},
        "json": {"lines": [[1, 2]]},
    }
    body = {"collectionName": "Orders", "collectionScope": "contact", "collectionType": "orders"}
    fake.add_contact("jane@example.com")
    async with httpx.AsyncClient(base_url=fake.url, auth=(USER, PASSWORD)) as client:
        anonymous = await client.get("/insightData/v3/collections", auth=None)
        no_records = await client.put("/insightData/v3/import", json=body)
        accepted = await client.put("/insightData/v3/import", json=body | {"records": [record]})
        await asyncio.sleep(0.1)
        status = await client.get(f"/insightData/v3/import/{accepted.json()['importId']}")

    assert anonymous.status_code == 401
    assert no_records.status_code == 400
    assert no_records.json()["errorCode"] == "insightData:validationFailed"
    assert fake.invalid_requests == [
        "PUT /insightData/v3/import: (the body): 'records' is a required property"
    ]
    assert status.json()["status"] == "Finished"
    assert status.json()["failures"][0]["failureReason"] == "JsonContainsNestedArray"
    assert fake.records() == {}


async def test_the_fake_takes_five_imports_at_once_like_dotdigital(fake) -> None:
    fake.import_seconds = 30  # none finishes during the test
    fake.add_contact("jane@example.com")
    record = {
        "key": "SO-1",
        "contactIdentity": {"identifier": "email", "value": "jane@example.com"},
        "json": {"id": "SO-1"},
    }
    body = {
        "collectionName": "Orders",
        "collectionScope": "contact",
        "collectionType": "orders",
        "records": [record],
    }
    async with httpx.AsyncClient(base_url=fake.url, auth=(USER, PASSWORD)) as client:
        answers = [await client.put("/insightData/v3/import", json=body) for _ in range(6)]

    assert [answer.status_code for answer in answers] == [202] * 5 + [429]
    assert answers[5].json()["errorCode"] == "insightData:tooManyActiveImports"


# --- the real command line ----------------------------------------------------------------------


def cli_env(password: str = PASSWORD) -> dict[str, str]:
    return {PASSWORD_ENV: password}


def secret_free(folder: Path, *outputs: str) -> bool:
    """Neither password appears in any output nor in any file under `folder`."""
    texts = [output.encode() for output in outputs]
    texts += [path.read_bytes() for path in folder.rglob("*") if path.is_file()]
    return not any(
        secret.encode() in text for text in texts for secret in (PASSWORD, WRONG_PASSWORD)
    )


def wait_for_imports(fake: FakeDotdigital, count: int, timeout: float = 30) -> None:
    """Until the fake has seen `count` Insight import submissions in all."""
    deadline = time.monotonic() + timeout
    while fake.count("PUT", "/insightData/v3/import") < count:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_sigkill_mid_run_then_a_full_run_leaves_each_order_once(fake, tmp_path: Path) -> None:
    settings = load_settings(
        write_settings(tmp_path, {"task": {"batch_size": 25}, **dotdigital_overrides(fake.url)})
    )
    demo(settings, orders=900, malformed=0)
    valid, _ = asyncio.run(expected_orders(settings))
    rng = random.Random(4711)

    for _ in range(3):
        imports_before = fake.count("PUT", "/insightData/v3/import")
        process = subprocess.Popen(
            [sys.executable, "-m", "order_export_tui", "run"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO), **cli_env()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Kill a few imports into the run, just after one was submitted or a little later.
        wait_for_imports(fake, imports_before + rng.randint(2, 8))
        time.sleep(rng.uniform(0, 0.15))
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert len(fake.records()) < len(valid)

    final = order_export("run", "--json", cwd=tmp_path, env=cli_env())

    assert final.returncode == 0, final.stderr
    assert set(fake.records()) == valid  # one record per key, none lost
    with sqlite3.connect(settings.state_database_path) as db:
        exported = [row[0] for row in db.execute("SELECT order_id FROM exported_order")]
    assert Counter(exported) == Counter(valid)  # each recorded once
    writes = sum(fake.write_count(order_id) for order_id in valid)
    assert writes - len(valid) <= 3 * 5 * 25  # repeats only for batches in flight at a kill
    assert fake.invalid_requests == []


def test_wrong_credentials_fail_the_run_with_exit_1_after_at_most_two_requests(
    fake, tmp_path: Path
) -> None:
    settings = load_settings(write_settings(tmp_path, dotdigital_overrides(fake.url)))
    demo(settings, orders=200)

    result = order_export("run", "--json", cwd=tmp_path, env=cli_env(WRONG_PASSWORD))

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "failed"
    assert "did not accept the API user" in report["error"]
    assert PASSWORD_ENV in report["error"]
    assert len(fake.requests) <= 2
    assert secret_free(tmp_path, result.stdout, result.stderr)


def test_check_connect_proves_the_credentials_and_names_a_wrong_password(
    fake, tmp_path: Path
) -> None:
    settings = load_settings(write_settings(tmp_path, dotdigital_overrides(fake.url)))
    demo(settings, orders=20)

    good = order_export("check", "--connect", cwd=tmp_path, env=cli_env())
    bad = order_export("check", "--connect", cwd=tmp_path, env=cli_env(WRONG_PASSWORD))

    assert good.returncode == 0, good.stderr
    assert bad.returncode == 2
    assert "HTTP 401" in bad.stderr
    assert PASSWORD_ENV in bad.stderr and "dotdigital.api_user" in bad.stderr
    assert secret_free(tmp_path, good.stdout, good.stderr, bad.stdout, bad.stderr)
