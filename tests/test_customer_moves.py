"""Moves between customers (interfaces.md §7): when an order's e-mail changes in the ERP, the
platform afterwards holds the order once, under the new e-mail, on Dotdigital and Mailchimp,
from a run and from a real-time event, and whatever crash comes between the move's steps."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.export_service import ExportService, RealtimeChannel
from order_export_tui.service.intake import signature_for
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import Settings, destination_identity, load_settings
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from tests.conftest import write_settings
from tests.fakes.dotdigital import FakeDotdigital
from tests.fakes.mailchimp import MailchimpFake
from tests.support.cli import REPO, order_export
from tests.support.demo_erp import demo, move_order
from tests.support.dotdigital_account import PASSWORD, PASSWORD_ENV, USER, dotdigital_overrides
from tests.support.engines import make_engine
from tests.support.loopback_server import Fault
from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, STORE, mailchimp_overrides
from tests.support.orders import VALID
from tests.support.ports import free_port
from tests.support.webstore import SECRET

NEW_EMAIL = "new.owner@example.com"


@dataclass
class Platform:
    """One platform's fake as these tests look at it."""

    name: str
    fake: FakeDotdigital | MailchimpFake
    overrides: dict[str, Any]
    env: dict[str, str]

    def holders(self, order_id: str) -> list[str]:
        """The e-mails the platform holds this order under (lower-cased), one per copy."""
        if isinstance(self.fake, FakeDotdigital):
            return [email.lower() for email in self.fake.held_by(order_id)]
        order = self.fake.store_orders(STORE).get(order_id)
        if order is None:
            return []
        customer = order["customer"]
        email = self.fake.customers[(STORE, customer["id"])]["email_address"]
        assert customer["id"] == hashlib.md5(email.lower().encode()).hexdigest()
        return [email.lower()]

    def is_second_step(self, method: str, path: str) -> bool:
        """The move's second request: Dotdigital deletes the old record after the upsert;
        Mailchimp creates the order again after deleting it."""
        if isinstance(self.fake, FakeDotdigital):
            return method == "DELETE" and path.startswith("/insightData/v3/contacts/email/")
        return method == "POST" and path.endswith(f"/stores/{STORE}/orders")

    def plan_on_second_step(self, fault: Fault, arrived: threading.Event | None = None) -> None:
        def when(method: str, path: str) -> bool:
            hit = self.is_second_step(method, path)
            if hit and arrived is not None:
                arrived.set()
            return hit

        self.fake.plan(fault, when=when)

    def valid_requests(self) -> bool:
        if isinstance(self.fake, FakeDotdigital):
            return self.fake.invalid_requests == [] and self.fake.internal_errors == []
        return self.fake.schema_errors == []


@contextlib.contextmanager
def platform_fake(name: str) -> Iterator[Platform]:
    if name == "dotdigital":
        with FakeDotdigital(USER, PASSWORD) as dotdigital:
            yield Platform(
                name, dotdigital, dotdigital_overrides(dotdigital.url), {PASSWORD_ENV: PASSWORD}
            )
    else:
        with MailchimpFake(KEY, lists=(AUDIENCE,)) as mailchimp:
            yield Platform(name, mailchimp, mailchimp_overrides(mailchimp), {KEY_ENV: KEY})


@pytest.fixture(params=["dotdigital", "mailchimp"])
def platform(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    with platform_fake(request.param) as found:
        for variable, value in found.env.items():
            monkeypatch.setenv(variable, value)
        yield found
        assert found.valid_requests()


def confirmed_email(settings: Settings, order_id: str) -> str | None:
    identity = destination_identity(settings).identity
    with sqlite3.connect(settings.state_database_path) as db:
        row = db.execute(
            "SELECT customer_email FROM exported_order WHERE destination = ? AND order_id = ?",
            (identity, order_id),
        ).fetchone()
    db.close()
    return None if row is None else row[0]


def first_order(platform: Platform) -> tuple[str, str]:
    """An order the platform holds, and its e-mail."""
    if isinstance(platform.fake, FakeDotdigital):
        order_id = sorted(platform.fake.records())[0]
    else:
        order_id = sorted(platform.fake.store_orders(STORE))[0]
    [email] = platform.holders(order_id)
    return order_id, email


# --- a run ---------------------------------------------------------------------------------


async def test_a_run_moves_an_order_to_its_new_customer(
    platform: Platform, make_settings, state_factory
) -> None:
    settings = make_settings(**platform.overrides)
    demo(settings, orders=20, malformed=0)
    engine = make_engine(settings, state_factory(settings))
    assert (await engine.run()).outcome == "succeeded"
    order_id, old = first_order(platform)
    assert confirmed_email(settings, order_id) == old

    move_order(demo_database_path(settings), order_id, NEW_EMAIL)
    report = await engine.run()

    assert report.outcome == "succeeded", report.error
    assert report.counts["updated"] == 1
    assert platform.holders(order_id) == [NEW_EMAIL]
    assert confirmed_email(settings, order_id) == NEW_EMAIL
    again = await engine.run()
    assert again.counts["updated"] == 0  # the move is done: nothing more to send
    assert platform.holders(order_id) == [NEW_EMAIL]


async def test_an_e_mail_that_changes_only_in_case_is_no_move(
    platform: Platform, make_settings, state_factory
) -> None:
    settings = make_settings(**platform.overrides)
    demo(settings, orders=10, malformed=0)
    engine = make_engine(settings, state_factory(settings))
    assert (await engine.run()).outcome == "succeeded"
    order_id, old = first_order(platform)
    deletes = [r for r in requests_of(platform) if r[0] == "DELETE"]

    move_order(demo_database_path(settings), order_id, old.upper())
    report = await engine.run()

    assert report.counts["updated"] == 1
    assert platform.holders(order_id) == [old]
    assert [r for r in requests_of(platform) if r[0] == "DELETE"] == deletes  # nothing deleted


def requests_of(platform: Platform) -> list[tuple[str, str]]:
    if isinstance(platform.fake, FakeDotdigital):
        return [(seen.method, seen.path) for seen in platform.fake.requests]
    return [(exchange.method, exchange.path) for exchange in platform.fake.exchanges]


# --- a real-time event ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def realtime_service(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The service with its webhook intake on loopback, delivering to the real destination."""
    state = StateStore(settings.state_database_path)
    intake_state = StateStore(settings.state_database_path, durable=True)
    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=build_destination
    )
    channel = RealtimeChannel(
        settings,
        state=state,
        intake_state=intake_state,
        destination_factory=build_destination,
        source_factory=build_source,
        secret=SECRET,
        outage_backoff=(0.05, 0.1, 0.2),
    )
    service = ExportService(settings, engine, realtime=channel)
    serving = asyncio.create_task(service.serve())
    try:
        while not channel.listening:
            assert not serving.done(), "the service did not start"
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://{settings.webhook.listen}") as client:
            yield client
    finally:
        await service.stop()
        await serving
        intake_state.close()
        state.close()


async def post_order(client: httpx.AsyncClient, doc: dict[str, Any]) -> None:
    body = orjson.dumps(doc)
    headers = {"X-Signature": signature_for(SECRET, body), "Content-Type": "application/json"}
    answer = await client.post("/webhooks/order-completed", content=body, headers=headers)
    assert answer.status_code == 202, answer.text


async def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_real_time_event_moves_an_order_to_its_new_customer(
    platform: Platform, make_settings
) -> None:
    settings = make_settings(
        **platform.overrides,
        webhook={"enabled": True, "listen": f"127.0.0.1:{free_port()}"},
        task={"max_retry_interval_seconds": 2, "max_retries": 1},
    )
    # Dated now: within the export window, as a webstore's new order is.
    doc = {**VALID, "order_date": datetime.now().astimezone().replace(microsecond=0).isoformat()}
    order_id = doc["order_id"]
    async with realtime_service(settings) as client:
        await post_order(client, doc)
        await until(lambda: confirmed_email(settings, order_id) == "jane@example.com")
        assert platform.holders(order_id) == ["jane@example.com"]

        moved = {**doc, "customer": {**doc["customer"], "email": NEW_EMAIL}}
        await post_order(client, moved)
        await until(lambda: confirmed_email(settings, order_id) == NEW_EMAIL)

        assert platform.holders(order_id) == [NEW_EMAIL]


# --- a crash between the steps -------------------------------------------------------------


def test_sigkill_between_the_steps_of_a_move_then_a_run_holds_the_order_once(
    platform: Platform, tmp_path: Path
) -> None:
    settings = load_settings(write_settings(tmp_path, platform.overrides))
    demo(settings, orders=20, malformed=0)
    first = order_export("run", "--json", cwd=tmp_path, env=platform.env)
    assert first.returncode == 0, first.stderr
    order_id, old = first_order(platform)
    move_order(demo_database_path(settings), order_id, NEW_EMAIL)
    # The second step hangs (and is then dropped, undone): the kill lands between the steps.
    arrived = threading.Event()
    platform.plan_on_second_step(Fault(delay=60, drop=True), arrived)

    process = subprocess.Popen(
        [sys.executable, "-m", "order_export_tui", "run"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), **platform.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert arrived.wait(60), "the move's second step never came"
        assert process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # Between the steps: Dotdigital holds it twice, Mailchimp not at all; the state still
    # knows the e-mail it was confirmed under.
    between = platform.holders(order_id)
    assert sorted(between) == (sorted([NEW_EMAIL, old]) if platform.name == "dotdigital" else [])
    assert confirmed_email(settings, order_id) == old

    final = order_export("run", "--json", cwd=tmp_path, env=platform.env)

    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["counts"]["updated"] == 1
    assert platform.holders(order_id) == [NEW_EMAIL]
    assert confirmed_email(settings, order_id) == NEW_EMAIL


# --- any sequence of e-mail changes -----------------------------------------------------------

emails = st.sampled_from(["a@example.com", "b@example.com", "B@example.com", "c@example.org"])
steps = st.lists(st.tuples(emails, st.booleans()), min_size=1, max_size=4)


@pytest.mark.parametrize("name", ["dotdigital", "mailchimp"])
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=steps)
@example(  # a case-only change recorded, then an interrupted move (found by hypothesis)
    changes=[("b@example.com", False), ("B@example.com", False), ("a@example.com", True)]
)
def test_any_sequence_of_e_mail_changes_ends_with_the_order_once_under_the_last(  # type: ignore[no-untyped-def]
    name, changes, tmp_path_factory, monkeypatch
) -> None:
    """Each change is followed by a run; `interrupted` makes that run fail on the move's
    second step (as a crash between the steps would leave it), and the next run finishes it."""
    folder = tmp_path_factory.mktemp("moves")
    with platform_fake(name) as platform:
        for variable, value in platform.env.items():
            monkeypatch.setenv(variable, value)
        settings = load_settings(
            write_settings(folder, {**platform.overrides, "task": {"max_retries": 0}})
        )
        demo(settings, orders=3, malformed=0)
        asyncio.run(_runs_over(platform, settings, changes))
        assert platform.valid_requests()


async def _runs_over(
    platform: Platform, settings: Settings, changes: list[tuple[str, bool]]
) -> None:
    state = StateStore(settings.state_database_path)
    try:
        engine = make_engine(settings, state)
        assert (await engine.run()).outcome == "succeeded"
        order_id, current = first_order(platform)
        for email, interrupted in changes:
            move_order(demo_database_path(settings), order_id, email)
            moving = email.lower() != current.lower()
            if interrupted and moving:
                platform.plan_on_second_step(Fault(status=503))
                failed = await engine.run()
                assert failed.outcome == "failed"
                # nothing recorded (a case-only change before it was recorded as it came)
                assert (confirmed_email(settings, order_id) or "").lower() == current.lower()
            report = await engine.run()
            assert report.outcome == "succeeded", report.error
            if moving:
                current = email
            assert [held.lower() for held in platform.holders(order_id)] == [current.lower()]
            assert (confirmed_email(settings, order_id) or "").lower() == current.lower()
    finally:
        state.close()


async def test_a_mailchimp_delete_counts_only_with_its_documented_204(
    make_settings, state_factory, monkeypatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with MailchimpFake(KEY, lists=(AUDIENCE,)) as fake:
        settings = make_settings(**mailchimp_overrides(fake), task={"max_retries": 0})
        demo(settings, orders=5, malformed=0)
        engine = make_engine(settings, state_factory(settings))
        assert (await engine.run()).outcome == "succeeded"
        order_id = sorted(fake.store_orders(STORE))[0]
        old = confirmed_email(settings, order_id)
        move_order(demo_database_path(settings), order_id, NEW_EMAIL)
        # A 200 with a body is what every other request answers, not what a DELETE does.
        fake.plan(
            Fault(status=200, body={"id": order_id}),
            when=lambda method, path: method == "DELETE",
        )

        report = await engine.run()

        assert report.outcome == "failed"
        assert "the documented success is HTTP 204" in (report.error or "")
        assert confirmed_email(settings, order_id) == old
        assert fake.schema_errors == []
