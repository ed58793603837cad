"""The comparison `verify` makes (interfaces.md §8), over random drift: it names exactly the
drift that was made, and once each item is repaired a second comparison finds none."""

from __future__ import annotations

import copy
import os
import stat
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_export_tui.destinations.readback import PlatformOrder, platform_view
from order_export_tui.destinations.readback_spill import (
    document_spill,
    erp_spill,
    platform_spill,
)
from order_export_tui.engine.drift import Drift, compare
from tests.support.orders import VALID

PAYMENT = ("pending", "paid", "partially_paid", "refunded", "partially_refunded", "failed")
SHIPPING = ("not_shipped", "partially_shipped", "shipped")
CURRENCIES = ("EUR", "USD", "GBP")
CHANGEABLE = (
    "payment_status",
    "shipping_status",
    "total",
    "currency",
    "email",
    "tracking_number",
    "line_count",
)


def document(number: int, draw: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    doc["order_id"] = f"SO-{number:06d}"
    doc["customer"]["email"] = f"c{draw(st.integers(0, 50))}@example.com"
    doc["payment_status"] = draw(st.sampled_from(PAYMENT))
    doc["shipping_status"] = draw(st.sampled_from(SHIPPING))
    doc["total"] = draw(st.integers(0, 100_000)) / 100
    doc["currency"] = draw(st.sampled_from(CURRENCIES))
    doc["tracking_number"] = draw(st.sampled_from(("", "TRACK-1", "TRACK-2")))
    doc["lines"] = doc["lines"] * draw(st.integers(1, 4))
    return doc


def changed(order: PlatformOrder, field: str, draw: Any) -> PlatformOrder:
    """`order` with `field` surely different, as the comparison sees it."""
    value = getattr(order, field)
    if field == "payment_status":
        new: Any = draw(st.sampled_from([p for p in PAYMENT if p != value]))
    elif field == "shipping_status":
        new = draw(st.sampled_from([s for s in SHIPPING if s != value]))
    elif field == "total":
        new = round(value + draw(st.sampled_from((-1, 1))) * draw(st.integers(1, 500)) / 100, 2)
    elif field == "currency":
        new = draw(st.sampled_from([c for c in CURRENCIES if c != value]))
    elif field == "email":
        new = "moved-" + value
    elif field == "tracking_number":
        new = value + "-X"
    else:
        new = value + draw(st.integers(1, 3))
    return replace(order, **{field: new})


@st.composite
def scenarios(draw: Any) -> tuple[list[dict[str, Any]], list[PlatformOrder], list[Drift]]:
    """ERP orders, a platform copy of them with random drift, and the drift expected."""
    numbers = draw(st.sets(st.integers(0, 400), max_size=40))
    docs = [document(number, draw) for number in sorted(numbers)]
    platform: list[PlatformOrder] = []
    expected: list[Drift] = []
    for doc in docs:
        view = platform_view(doc)
        action = draw(st.sampled_from(("keep", "keep", "delete", "change", "moved")))
        if action == "keep":
            platform.append(view)
        elif action == "delete":
            expected.append(Drift(view.order_id, "missing"))
        elif action == "change":
            fields = draw(st.sets(st.sampled_from(CHANGEABLE), min_size=1))
            copy_ = view
            for field in fields:
                copy_ = changed(copy_, field, draw)
            platform.append(copy_)
            expected.extend(
                Drift(view.order_id, "different", f, getattr(copy_, f), getattr(view, f))
                for f in CHANGEABLE
                if f in fields
            )
        else:  # moved to another customer: the copy under the old address is still there
            old = changed(view, "email", draw)
            platform.extend([view, old])
            expected.append(Drift(view.order_id, "different", "email", old.email, view.email))
    for number in draw(st.sets(st.integers(401, 600), max_size=10)):
        extra = replace(platform_view(document(number, draw)), cancelled=draw(st.booleans()))
        platform.append(extra)
        if not extra.cancelled:
            expected.append(Drift(extra.order_id, "extra"))
    draw(st.randoms()).shuffle(platform)  # platforms list orders in their own order
    return docs, platform, sorted(expected, key=lambda d: d.order_id)


def sorted_copy(platform: list[PlatformOrder]) -> list[PlatformOrder]:
    with platform_spill(one_per_order=False) as spill:
        spill.add_many(platform)
        return list(spill.sorted())


def repaired(
    docs: list[dict[str, Any]], platform: list[PlatformOrder], drift: list[Drift]
) -> list[PlatformOrder]:
    """The platform's copy after each drift item is repaired as §8 says: a missing or
    different order is sent as the ERP has it (a move leaves it under the new address only),
    an extra one is marked cancelled."""
    by_id = {doc["order_id"]: doc for doc in docs}
    held: dict[str, list[PlatformOrder]] = {}
    for order in platform:
        held.setdefault(order.order_id, []).append(order)
    for item in drift:
        if item.kind == "extra":
            held[item.order_id] = [
                replace(o, payment_status="cancelled", cancelled=True) for o in held[item.order_id]
            ]
        else:
            held[item.order_id] = [platform_view(by_id[item.order_id])]
    return [order for orders in held.values() for order in orders]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_comparison_names_exactly_the_drift_made_and_none_after_repair(
    scenario: tuple[list[dict[str, Any]], list[PlatformOrder], list[Drift]],
) -> None:
    docs, platform, expected = scenario

    found = list(compare(docs, sorted_copy(platform)))

    assert sorted(found, key=lambda d: d.order_id) == expected
    with erp_spill() as views:  # the ERP's side as verify spills it: the same drift
        views.add_many(platform_view(doc) for doc in reversed(docs))
        assert list(compare(views.sorted(), sorted_copy(platform))) == found
    assert [d.order_id for d in found] == sorted(d.order_id for d in found)
    after = repaired(docs, platform, found)
    assert list(compare(docs, sorted_copy(after))) == []


def test_money_is_compared_to_the_cent_and_addresses_without_case() -> None:
    doc = copy.deepcopy(VALID)
    view = platform_view(doc)
    same = replace(view, total=view.total + 0.004, email=view.email.upper(), currency="eur")
    assert list(compare([doc], [same])) == []
    cent = replace(view, total=round(view.total + 0.01, 2))
    assert list(compare([doc], [cent])) == [
        Drift(view.order_id, "different", "total", cent.total, view.total)
    ]


def test_a_total_that_is_no_number_at_the_platform_differs() -> None:
    doc = copy.deepcopy(VALID)
    broken = replace(platform_view(doc), total=float("nan"))
    assert list(compare([doc], sorted_copy([broken]))) == [
        Drift(doc["order_id"], "different", "total", None, doc["total"])
    ]


def test_unsorted_input_is_refused_rather_than_compared() -> None:
    first, second = copy.deepcopy(VALID), copy.deepcopy(VALID)
    first["order_id"], second["order_id"] = "SO-2", "SO-1"
    with pytest.raises(ValueError, match="sorted by order id"):
        list(compare([first, second], []))
    with pytest.raises(ValueError, match="sorted by order id"):
        list(compare([], [platform_view(first), platform_view(second)]))


def test_the_spill_is_private_sorted_replacing_and_gone_after() -> None:
    docs = [copy.deepcopy(VALID) for _ in range(3)]
    for doc, order_id in zip(docs, ("SO-3", "SO-1", "SO-2"), strict=True):
        doc["order_id"] = order_id
    later = copy.deepcopy(docs[0])
    later["payment_status"] = "paid"
    with document_spill() as spill:
        spill.add_many([*docs, later])
        folder = spill.folder
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(folder / "spill.sqlite").st_mode) == 0o600
        out = list(spill.sorted())
    assert [doc["order_id"] for doc in out] == ["SO-1", "SO-2", "SO-3"]
    assert out[2]["payment_status"] == "paid"  # the last one added for an order wins
    assert not folder.exists()


def test_an_order_the_erp_lists_but_cannot_send_is_not_extra() -> None:
    broken = platform_view(copy.deepcopy(VALID))
    assert list(compare([], [broken], listed={broken.order_id})) == []
    assert list(compare([], [broken])) == [Drift(broken.order_id, "extra")]
