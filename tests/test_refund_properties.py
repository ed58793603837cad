"""Property tests of what Business Central's credit memos make of an order (interfaces.md §7):
any credit memos and invoices, however odd their values, give each order refunded,
partially_refunded or nothing, never an error; and the sums decide which."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.sources.business_central.refunds import (
    CENT,
    PARTIALLY_REFUNDED,
    REFUNDED,
    refund_statuses,
)

ORDERS = ("SO-1", "SO-2", "SO-3")
INVOICES = {"INV-1": "SO-1", "INV-2": "SO-1", "INV-3": "SO-2", "INV-4": "SO-3"}
IDS = {number: f"0000000{index}-aaaa-4bbb-8ccc-dddddddddddd" for index, number in
       enumerate(INVOICES, 1)}  # fmt: skip

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.lists(st.integers(), max_size=2),
)
keys = st.one_of(
    st.sampled_from(["id", "number", "orderNumber", "invoiceId", "invoiceNumber", "status",
                     "totalAmountIncludingTax"]),
    st.text(max_size=8),
)  # fmt: skip
any_entity = st.dictionaries(keys, odd_values, max_size=7)
amounts = st.one_of(st.floats(min_value=0, max_value=1e6, allow_nan=False), odd_values)
statuses = st.one_of(
    st.sampled_from(["Draft", "Open", "Paid", "Canceled", "In Review"]), odd_values
)


@st.composite
def invoices(draw: st.DrawFn) -> list[dict[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(sorted(INVOICES)), unique=True))
    return [
        {
            "id": draw(st.sampled_from([IDS[number], IDS[number].upper()])),
            "number": number,
            "orderNumber": draw(st.one_of(st.just(INVOICES[number]), odd_values)),
            "totalAmountIncludingTax": draw(amounts),
        }
        for number in chosen
    ]


@st.composite
def memos(draw: st.DrawFn) -> list[dict[str, Any]]:
    found = []
    for _ in range(draw(st.integers(0, 6))):
        number = draw(st.sampled_from([*sorted(INVOICES), "INV-404"]))
        memo: dict[str, Any] = {
            "number": draw(st.text(max_size=4)),
            "status": draw(statuses),
            "totalAmountIncludingTax": draw(amounts),
            "invoiceId": draw(st.one_of(st.just(IDS.get(number, "")), odd_values)),
            "invoiceNumber": draw(st.one_of(st.just(number), st.just(""), odd_values)),
        }
        for key in draw(st.sets(st.sampled_from(sorted(memo)))):
            del memo[key]
        found.append(memo)
    return found


def finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@settings(max_examples=400, deadline=None)
@given(invoices(), memos())
def test_any_credit_memos_give_refunded_partially_refunded_or_nothing(
    invoiced: list[dict[str, Any]], credit_memos: list[dict[str, Any]]
) -> None:
    found = refund_statuses(credit_memos, invoiced)

    assert set(found.values()) <= {REFUNDED, PARTIALLY_REFUNDED}
    known = {
        i["number"]: i for i in invoiced if isinstance(i["orderNumber"], str) and i["orderNumber"]
    }
    by_id = {i["id"].lower(): i for i in known.values()}
    credited: dict[str, float] = {}
    for memo in credit_memos:
        status = memo.get("status")
        if not isinstance(status, str) or status.strip().lower() in {
            "draft",
            "canceled",
            "cancelled",
        }:
            continue
        guid = memo.get("invoiceId")
        number = memo.get("invoiceNumber")
        invoice = (by_id.get(guid.strip().lower()) if isinstance(guid, str) else None) or (
            known.get(number.strip()) if isinstance(number, str) else None
        )
        value = finite(memo.get("totalAmountIncludingTax"))
        if invoice is None or value is None or value <= 0:
            continue
        order = invoice["orderNumber"]
        credited[order] = credited.get(order, 0.0) + value
    expected = {}
    for order, value in credited.items():
        if value < CENT:
            continue
        total = sum(
            max(finite(i["totalAmountIncludingTax"]) or 0.0, 0.0)
            for i in known.values()
            if i["orderNumber"] == order
        )
        expected[order] = REFUNDED if value >= total - CENT else PARTIALLY_REFUNDED
    assert found == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(any_entity, max_size=5), st.lists(any_entity, max_size=5))
def test_answers_of_any_shape_never_fail(
    credit_memos: list[dict[str, Any]], invoiced: list[dict[str, Any]]
) -> None:
    found = refund_statuses(credit_memos, invoiced)
    assert set(found.values()) <= {REFUNDED, PARTIALLY_REFUNDED}
    assert all(isinstance(order, str) and order for order in found)
