"""Property (issue 14): an order is recorded as exported only after the platform's documented
success. Status codes crossed with bodies (empty, a web page, truncated JSON, JSON of the wrong
shape, absurdly nested JSON, the right one), put in place of the loopback fakes' answers."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_export_tui.destinations.base import OrderChange
from order_export_tui.destinations.dotdigital.destination import DotdigitalDestination
from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import Settings, load_settings
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from order_export_tui.transport.retry import Retrier, RetriesExhaustedError, RetryPolicy
from tests.conftest import FakeClock, write_settings
from tests.fakes.dotdigital import Answer, FakeDotdigital
from tests.fakes.mailchimp import MailchimpFake
from tests.support.answer_accounts import (
    MC_KEY,
    MC_KEY_ENV,
    PASSWORD,
    PASSWORD_ENV,
    USER,
    dotdigital,
    jane,
    mailchimp,
)
from tests.support.demo_erp import demo, expected_orders
from tests.support.fault_server import RawBody

STATUSES = (200, 201, 202, 204, 400, 404, 500)
KINDS = ("empty", "html", "truncated", "wrong list", "wrong object", "nested", "right")
answers = st.tuples(st.sampled_from(STATUSES), st.sampled_from(KINDS))
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_numbers = itertools.count()


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.setenv(MC_KEY_ENV, MC_KEY)


def body_of(kind: str, right: Any) -> Any:
    """The body an answer carries instead of the platform's own (`right`)."""
    if kind == "right":
        return right
    if kind == "empty":
        return None
    if kind == "html":
        return RawBody(b"<!doctype html><title>Proxy error</title><p>Bad gateway</p>")
    if kind == "truncated":
        text = json.dumps(right if right is not None else {"importId": "a-b-c"}).encode()
        return RawBody(text[: max(1, len(text) // 2)], "application/json")
    if kind == "wrong list":
        return []
    if kind == "wrong object":
        return {"message": "ok"}
    return RawBody(b"[" * 100_000, "application/json")


def swapped(status: int, kind: str, right: Any) -> tuple[int, Any]:
    # A 204 carries no body, whatever the sender meant.
    return status, (None if status == 204 else body_of(kind, right))


def documented(status: int, kind: str, statuses: tuple[int, ...], any_json: bool) -> bool:
    """The documented success: its status and its body (for an answer the spec gives no body:
    none, or JSON)."""
    if status not in statuses:
        return False
    if status == 204 or kind == "right":
        return True
    return any_json and kind in ("empty", "wrong list", "wrong object")


def new_state(folder: Path) -> StateStore:
    return StateStore(folder / f"state-{next(_numbers)}.sqlite")


def run_once(settings_: Settings, state: StateStore) -> None:
    clock = FakeClock()
    engine = ExportEngine(
        settings_,
        state,
        source_factory=build_source,
        destination_factory=build_destination,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    asyncio.run(engine.run())


def dotdigital_rewrite(method: str, prefix: str, status: int, kind: str) -> Callable[..., Answer]:
    def change(seen: str, path: str, answer: Answer) -> Answer:
        if seen != method or not path.startswith(prefix):
            return answer
        new_status, body = swapped(status, kind, answer.body)
        return Answer(new_status, body, answer.headers)

    return change


@pytest.mark.parametrize(
    ("method", "prefix", "success"),
    [("PUT", "/insightData/v3/import", (202,)), ("GET", "/insightData/v3/import/", (200,))],
    ids=["import submission", "import report"],
)
@PROPERTY
@given(answer=answers)
def test_dotdigital_bulk_orders_are_recorded_only_after_the_documented_success(
    tmp_path: Path, method: str, prefix: str, success: tuple[int, ...], answer: tuple[int, str]
) -> None:
    status, kind = answer
    with FakeDotdigital(USER, PASSWORD) as fake:
        settings_ = load_settings(
            write_settings(
                tmp_path, dotdigital(fake.url) | {"task": {"max_retries": 1, "batch_size": 10}}
            )
        )
        if not demo_database_path(settings_).exists():
            demo(settings_, orders=10, malformed=0)
        valid, _ = asyncio.run(expected_orders(settings_))
        fake.rewrite = dotdigital_rewrite(method, prefix, status, kind)
        state = new_state(tmp_path)
        try:
            run_once(settings_, state)
            recorded = set(state.exported_orders(sorted(valid)))
        finally:
            state.close()
    if documented(status, kind, success, any_json=False):
        assert recorded == valid
    else:
        assert recorded == set()


@PROPERTY
@given(answer=answers)
def test_a_dotdigital_single_upsert_is_confirmed_only_by_the_documented_success(
    answer: tuple[int, str],
) -> None:
    status, kind = answer

    async def send() -> bool:
        destination = DotdigitalDestination(
            base_url=fake.url,
            api_user=USER,
            password_env=PASSWORD_ENV,
            collection="Orders",
            store_name="Test webstore",
        )
        await destination.open()
        clock = FakeClock()
        retrier = Retrier(RetryPolicy(1, 60), clock=clock.monotonic, sleep=clock.sleep)
        try:
            reason = await destination.send_one(OrderChange(jane(), "new", None), retrier)
        except RetriesExhaustedError:
            return False
        finally:
            await destination.close()
        return reason is None

    with FakeDotdigital(USER, PASSWORD) as fake:
        fake.add_contact("jane@example.com")
        fake.rewrite = dotdigital_rewrite("PUT", "/insightData/v3/contacts/", status, kind)
        confirmed = asyncio.run(send())
    assert confirmed == documented(status, kind, (201, 204), any_json=True)


@PROPERTY
@given(answer=answers)
def test_mailchimp_orders_are_recorded_only_after_the_documented_success(
    tmp_path: Path, answer: tuple[int, str]
) -> None:
    status, kind = answer
    with MailchimpFake(MC_KEY, lists=("aud-1",)) as fake:
        own = fake.answer

        def answer_instead(method: str, raw_path: str, *rest: Any) -> tuple[int, Any]:
            real_status, body = own(method, raw_path, *rest)
            if method == "POST" and raw_path.endswith("/orders"):
                return swapped(status, kind, body)
            return real_status, body

        fake.answer = answer_instead  # type: ignore[method-assign]
        settings_ = load_settings(
            write_settings(
                tmp_path,
                mailchimp(fake.url) | {"task": {"max_retries": 1, "max_items_to_skip": 100}},
            )
        )
        if not demo_database_path(settings_).exists():
            demo(settings_, orders=6, malformed=0)
        valid, _ = asyncio.run(expected_orders(settings_))
        state = new_state(tmp_path)
        try:
            run_once(settings_, state)
            recorded = set(state.exported_orders(sorted(valid)))
        finally:
            state.close()
    if documented(status, kind, (200,), any_json=False):
        assert recorded == valid
    else:
        assert recorded == set()
