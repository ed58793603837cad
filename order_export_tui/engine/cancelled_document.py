"""The document that marks an order cancelled at the platform (interfaces.md §7): what a
verify repair sends for an `extra` order, one the platform holds and the ERP does not list.

Built from the document the destination last confirmed when the state keeps it (real-time
orders, and a run's orders not shipped yet: only the payment status changes), else
from the platform's own copy of the order: what the read-back knows of it (customer, money,
statuses, tracking), with one line standing for the order's lines, which the read-back does
not keep.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from order_export_tui.destinations.readback import CANCELLED, PlatformOrder, parse_time
from order_export_tui.orders import SHIPPING_STATUSES, OrderDocument

STAND_IN_SKU = "order-export-cancelled"
_NO_ADDRESS = {"line1": "", "line2": "", "city": "", "region": "", "postcode": "", "country": ""}


def cancelled_document(stored: bytes | None, platform: PlatformOrder) -> OrderDocument:
    """The order as cancelled: `stored` (the state's document, JSON) when there is one, else
    made from `platform`'s copy."""
    if stored is not None:
        return {**orjson.loads(stored), "payment_status": CANCELLED}
    return _from_platform(platform)


def _from_platform(order: PlatformOrder) -> OrderDocument:
    moment = parse_time(order.order_date) or datetime.now(UTC)
    total = order.total if order.total == order.total and order.total >= 0 else 0.0  # NaN: 0
    return {
        "order_id": order.order_id,
        "order_date": moment.isoformat(),
        "customer": {"id": order.email, "email": order.email, "first_name": "", "last_name": ""},
        "currency": order.currency,
        "lines": [
            {
                "line_no": 1,
                "sku": STAND_IN_SKU,
                "name": "Cancelled order",
                "quantity": 1,
                "unit_price": total,
                "unit_price_incl_tax": total,
            }
        ],
        "subtotal": total,
        "discount": 0.0,
        "shipping_cost": 0.0,
        "tax": 0.0,
        "total": total,
        "shipping_method": "",
        "payment_method": "",
        "billing_address": dict(_NO_ADDRESS),
        "shipping_address": dict(_NO_ADDRESS),
        "shipping_status": (
            order.shipping_status if order.shipping_status in SHIPPING_STATUSES else "not_shipped"
        ),
        "payment_status": CANCELLED,
        "tracking_number": order.tracking_number,
        "tracking_url": "",
    }
