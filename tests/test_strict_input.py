"""Strict input (issue 15, item 4): each hostile case is a 400 with its reason, never a 500,
and nothing is stored; log lines cannot be forged through a logged value."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.daemon import OneLineFormatter
from order_export_tui.engine.runlogs import RunLog
from order_export_tui.logsafe import escape_for_log
from order_export_tui.orders import order_id_problem, order_problem
from order_export_tui.service.webhook_events import InvalidEventError, check_payment_status
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp
from tests.support.intake_server import Channel, payment, running_channel
from tests.support.orders import changed, order

ORDER_PATH = "/webhooks/order-completed"
PAYMENT_PATH = "/webhooks/payment-status"


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("currency", ["EUR"], "currency ['EUR'] is not an ISO 4217 code"),
        ("currency", {"code": "EUR"}, "is not an ISO 4217 code"),
        ("total", -29.2, "total must not be negative"),
        ("subtotal", -1, "subtotal must not be negative"),
        ("tax", -0.01, "tax must not be negative"),
        ("discount", -5.0, "discount must not be negative"),
        ("shipping_cost", -5, "shipping_cost must not be negative"),
        ("total", 2**60, "total must be a number"),
        ("total", float(2**70), "total must be a number"),
        ("lines.0.unit_price", float(2**60), "lines[0].unit_price must be a number"),
        ("order_id", "SO-1\x00", "may hold only letters"),
        ("order_id", "SO-1\nINJECTED run 99 succeeded", "may hold only letters"),
        ("order_id", "SO-\u202e1", "may hold only letters"),
        ("order_id", " SO-RT-1 ", "may hold only letters"),
        ("order_id", "S" * 65, "order_id is longer than 64 characters"),
    ],
)
def test_hostile_values_are_rejected_with_their_reason(path: str, value: Any, reason: str) -> None:
    problem = order_problem(changed(path, value))
    assert problem is not None
    assert reason in problem


def test_big_integers_are_rejected_whatever_the_parser_makes_of_them() -> None:
    # orjson reads 2**60 as an int and 2**70 as a float: both are beyond a double's exact range.
    for literal in (b"1152921504606846976", b"1180591620717411303424"):
        doc = orjson.loads(
            orjson.dumps(order("SO-1")).replace(b'"total":29.2', b'"total":' + literal)
        )
        assert order_problem(doc) == "total must be a number"


def test_the_ids_of_the_demo_erp_and_business_central_fit(tmp_path: Path) -> None:
    for order_id in ("SO-100234", "S-ORD101001", "101001", "SO-1", "WEB/2026/00017", "A.B_C-9"):
        assert order_id_problem(order_id) is None, order_id
    path = tmp_path / "erp.sqlite"
    generate_demo_erp(path, orders=50, seed=3, days=5, malformed=5)
    import asyncio

    async def ids() -> list[str]:
        source = DemoErpSource(path)
        try:
            found = []
            async for batch in source.iter_orders(datetime(2000, 1, 1, tzinfo=UTC)):
                found.extend(o["order_id"] for o in batch)
            return found
        finally:
            await source.close()

    found = asyncio.run(ids())
    assert len(found) >= 50
    assert all(order_id_problem(order_id) is None for order_id in found)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_an_id_is_accepted_only_when_it_is_plain(order_id: str) -> None:
    plain = re.fullmatch(r"[A-Za-z0-9._/-]{1,64}", order_id) is not None
    assert (order_id_problem(order_id) is None) == plain
    assert (order_problem({**order("SO-1"), "order_id": order_id}) is None) == plain


@pytest.mark.parametrize(
    "order_id", ["SO-1\n2026-11-27 INFO run 99 succeeded", "x" * 900_000, " SO-1", "", 7]
)
def test_a_payment_callback_needs_a_plain_bounded_order_id(order_id: Any) -> None:
    with pytest.raises(InvalidEventError) as raised:
        check_payment_status(payment("SO-1", "paid") | {"order_id": order_id})
    assert len(str(raised.value)) < 200  # the reason never echoes the whole input


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00+01:00", "2026-11-27T10:25:00", "2026-11-27T10:25+00:00" * 3],
)
def test_a_payment_callback_needs_a_usable_time(occurred_at: str) -> None:
    with pytest.raises(InvalidEventError):
        check_payment_status(payment("SO-1", "paid", occurred_at))


@pytest.fixture
async def channel(make_settings, loopback) -> AsyncIterator[Channel]:  # type: ignore[no-untyped-def]
    async with running_channel(make_settings, loopback) as running:
        yield running


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        (ORDER_PATH, orjson.dumps(order("SO-X1", currency=["EUR"])), "currency"),
        (ORDER_PATH, orjson.dumps(order("SO-X2", currency={"a": 1})), "currency"),
        (ORDER_PATH, orjson.dumps(order("SO-X3", total=-1.0)), "total must not be negative"),
        (
            ORDER_PATH,
            orjson.dumps(order("SO-X4")).replace(
                b'"total":29.2', b'"total":1180591620717411303424'
            ),
            "total must be a number",
        ),
        (ORDER_PATH, orjson.dumps(order(" SO-RT-1 ")), "order_id"),
        (ORDER_PATH, orjson.dumps(order("SO-1\nINJECTED run 99 succeeded")), "order_id"),
        (PAYMENT_PATH, orjson.dumps(payment("x" * 900_000, "paid")), "longer than 64"),
        (PAYMENT_PATH, orjson.dumps(payment("SO-1", ["paid"])), "payment_status"),
    ],
    ids=[
        "currency-list",
        "currency-object",
        "negative",
        "2**70",
        "spaces",
        "newline",
        "900k",
        "list",
    ],
)
async def test_hostile_webhook_bodies_get_400_with_the_reason_and_nothing_is_stored(
    channel: Channel, path: str, body: bytes, reason: str
) -> None:
    answer = await channel.post(path, body)

    assert answer.status_code == 400
    assert reason in answer.json()["error"]
    assert len(answer.text) < 1000
    assert channel.state.event_counts() == {}


def test_a_logged_value_cannot_start_a_line_of_its_own() -> None:
    formatter = OneLineFormatter("%(levelname)s %(message)s")  # the daemon's log lines
    record = logging.LogRecord(
        "order_export.intake", logging.INFO, __file__, 1,
        "accepted event for %s", ("SO-1\n2026-11-27 INFO run 99 succeeded\r\u2028\u202e",), None,
    )  # fmt: skip

    line = formatter.format(record)

    assert "\n" not in line and "\r" not in line and "\u2028" not in line and "\u202e" not in line
    assert line == "INFO accepted event for SO-1 2026-11-27 INFO run 99 succeeded  \\u202e"
    assert escape_for_log("plain text, ünïcode") == "plain text, ünïcode"


def test_a_run_log_line_cannot_be_forged(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run.log", lambda: datetime(2026, 11, 27, tzinfo=UTC))
    log.write("skipped SO-1\nINJECTED run 99 succeeded")
    log.close()

    lines = (tmp_path / "run.log").read_text().splitlines()

    assert len(lines) == 1
    assert lines[0].endswith("skipped SO-1\\nINJECTED run 99 succeeded")
