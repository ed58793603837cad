"""A valid order document (interfaces.md §1) and variations of it, for any test."""

from __future__ import annotations

import copy
from typing import Any

VALID: dict[str, Any] = {
    "order_id": "SO-100234",
    "order_date": "2026-11-27T10:21:00+00:00",
    "customer": {
        "id": "C-4711",
        "email": "jane@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
    },
    "currency": "EUR",
    "lines": [
        {
            "line_no": 1,
            "sku": "ITEM-001",
            "name": "Hat",
            "quantity": 2,
            "unit_price": 10.0,
            "unit_price_incl_tax": 12.1,
        }
    ],
    "subtotal": 20.0,
    "discount": 0.0,
    "shipping_cost": 5.0,
    "tax": 4.2,
    "total": 29.2,
    "shipping_method": "DHL",
    "payment_method": "iDEAL",
    "billing_address": {
        "line1": "Main St 1",
        "line2": "",
        "city": "Utrecht",
        "region": "",
        "postcode": "3511",
        "country": "NL",
    },
    "shipping_address": {
        "line1": "Main St 1",
        "line2": "",
        "city": "Utrecht",
        "region": "",
        "postcode": "3511",
        "country": "NL",
    },
    "shipping_status": "not_shipped",
    "payment_status": "pending",
    "tracking_number": "",
    "tracking_url": "",
}


def changed(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    target: Any = doc
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


def order(order_id: str, **changes: Any) -> dict[str, Any]:
    """The valid document under another id, with top-level fields changed."""
    doc = copy.deepcopy(VALID)
    doc["order_id"] = order_id
    doc.update(changes)
    return doc
