"""An order the ERP cancelled reaches each platform as interfaces.md §7 says: Mailchimp's
order gets `financial_status: "cancelled"` and `cancelled_at_foreign` (a status-only PATCH),
Dotdigital's record `paymentStatus: "cancelled"` and the rest as before. Against the loopback
platforms, which validate each request against the official specs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from order_export_tui.orders import order_problem
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import cancel_order
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from tests.fakes.dotdigital import FakeDotdigital
from tests.fakes.mailchimp import MailchimpFake
from tests.support.demo_erp import demo, read_all
from tests.support.dotdigital_account import PASSWORD, PASSWORD_ENV, USER, dotdigital_overrides
from tests.support.engines import make_engine
from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, STORE, mailchimp_overrides


@pytest.fixture
def mailchimp(monkeypatch: pytest.MonkeyPatch) -> Iterator[MailchimpFake]:
    monkeypatch.setenv(KEY_ENV, KEY)
    with MailchimpFake(KEY, lists=(AUDIENCE,)) as server:
        yield server


@pytest.fixture
def dotdigital(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDotdigital]:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with FakeDotdigital(USER, PASSWORD) as server:
        yield server
    assert server.internal_errors == []


async def an_unshipped_order(settings: Settings) -> str:
    docs = await read_all(demo_database_path(settings))
    return next(
        str(doc["order_id"])
        for doc in reversed(docs)
        if order_problem(doc) is None
        and doc["shipping_status"] == "not_shipped"
        and doc["payment_status"] == "paid"
    )


async def test_mailchimp_gets_the_order_as_cancelled_with_its_time(
    make_settings: Any, mailchimp: MailchimpFake
) -> None:
    settings = make_settings(**mailchimp_overrides(mailchimp))
    demo(settings, orders=60)
    gone = await an_unshipped_order(settings)
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        assert (await engine.run()).outcome == "succeeded"
        before = len(mailchimp.writes())
        cancel_order(demo_database_path(settings), gone)
        sent_from = datetime.now(UTC).replace(microsecond=0)

        report = await engine.run()

        assert report.outcome == "succeeded" and report.counts["cancelled"] == 1
        writes = [(e.method, e.path, e.body) for e in mailchimp.writes()[before:]]
        assert [(method, path) for method, path, _ in writes] == [
            ("PATCH", f"/ecommerce/stores/{STORE}/orders/{gone}")
        ]
        body = writes[0][2]
        assert body["financial_status"] == "cancelled"
        assert set(body) == {"financial_status", "cancelled_at_foreign"}
        assert datetime.fromisoformat(body["cancelled_at_foreign"]) >= sent_from
        held = mailchimp.store_orders(STORE)[gone]
        assert held["financial_status"] == "cancelled" and held["cancelled_at_foreign"]

        again = await engine.run()
        assert again.counts["cancelled"] == 0
        assert len(mailchimp.writes()) == before + 1  # nothing more
    finally:
        state.close()


async def test_dotdigital_gets_the_record_as_cancelled(
    make_settings: Any, dotdigital: FakeDotdigital
) -> None:
    settings = make_settings(**dotdigital_overrides(dotdigital.url))
    demo(settings, orders=60)
    gone = await an_unshipped_order(settings)
    state = StateStore(settings.state_database_path)
    engine = make_engine(settings, state)
    try:
        assert (await engine.run()).outcome == "succeeded"
        before = dict(dotdigital.records()[gone])
        cancel_order(demo_database_path(settings), gone)

        report = await engine.run()

        assert report.outcome == "succeeded" and report.counts["cancelled"] == 1
        assert dotdigital.records()[gone] == {**before, "paymentStatus": "cancelled"}
        assert (await engine.run()).counts["cancelled"] == 0
    finally:
        state.close()
