"""The order document's validation: every rejection says why."""

from __future__ import annotations

from typing import Any

import pytest

from order_export_tui.orders import content_hash, order_problem
from tests.support.orders import VALID, changed


def test_the_documented_example_is_valid() -> None:
    assert order_problem(VALID) is None


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("customer.email", "", "customer.email is missing"),
        ("customer.email", KeyError, "customer.email is missing"),
        ("customer.email", "jane at example", "customer.email is not a valid address"),
        ("currency", "XYZ", "currency 'XYZ' is not an ISO 4217 code"),
        ("currency", "eur", "is not an ISO 4217 code"),
        ("lines", [], "order has no lines"),
        ("lines.0.quantity", -1, "lines[0].quantity must be positive (got -1)"),
        ("lines.0.quantity", "2", "lines[0].quantity must be a number"),
        ("lines.0.sku", "", "lines[0].sku must be a non-empty string"),
        ("lines.0.unit_price", -0.5, "lines[0].unit_price must not be negative"),
        ("shipping_status", "lost", "shipping_status 'lost' is not one of"),
        ("payment_status", "unknown", "payment_status 'unknown' is not one of"),
        ("order_id", "", "order_id must be a non-empty string"),
        ("order_id", 12, "order_id must be a non-empty string"),
        ("order_date", "2026-11-27T10:21:00", "order_date must be an ISO 8601 time with an offset"),
        ("order_date", "yesterday", "order_date must be an ISO 8601 time with an offset"),
        ("total", True, "total must be a number"),
        ("total", KeyError, "total must be a number"),
        ("total", float("nan"), "total must be a number"),
        ("lines.0.quantity", float("inf"), "lines[0].quantity must be a number"),
        ("lines.0.quantity", 2**64, "lines[0].quantity must be a number"),
        ("customer", "C-4711", "customer must be an object"),
        ("billing_address.city", None, "billing_address.city must be a string"),
        ("shipping_address", [], "shipping_address must be an object"),
        ("tracking_url", None, "tracking_url must be a string"),
    ],
)
def test_a_broken_order_is_rejected_with_its_reason(path: str, value: Any, reason: str) -> None:
    problem = order_problem(changed(path, value))
    assert problem is not None
    assert reason in problem


def test_not_an_object_is_rejected() -> None:
    assert order_problem(["SO-1"]) == "order must be a JSON object"


def test_content_hash_ignores_key_order_and_sees_every_change() -> None:
    reordered = dict(reversed(list(VALID.items())))
    assert content_hash(reordered) == content_hash(VALID)
    assert content_hash(changed("shipping_status", "shipped")) != content_hash(VALID)
    assert content_hash(changed("lines.0.quantity", 3)) != content_hash(VALID)
