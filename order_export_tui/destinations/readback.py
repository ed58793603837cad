"""What a destination holds for an order, read back in the order document's terms (§8).

`PlatformOrder` is the one shape every destination's read-back yields, whatever the platform
calls its fields, so `verify` compares the ERP with any platform the same way. A read-back that
cannot read the platform raises (`DestinationError`, `RetriesExhaustedError`): an empty stream
always means an empty copy, never a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from order_export_tui.orders import OrderDocument

NOT_SHIPPED = "not_shipped"
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PlatformOrder:
    """One order as the platform holds it. `order_date` is ISO 8601 text as the platform gave
    it ("" when it gave none); `cancelled`: the platform counts it as cancelled."""

    order_id: str
    order_date: str
    email: str
    payment_status: str
    shipping_status: str
    total: float
    currency: str
    tracking_number: str
    line_count: int
    cancelled: bool


def platform_view(doc: OrderDocument) -> PlatformOrder:
    """What a platform holds for this order once it is sent as it is: the ERP's side of a
    comparison, and what a repair makes the platform's copy."""
    return PlatformOrder(
        order_id=doc["order_id"],
        order_date=doc["order_date"],
        email=doc["customer"]["email"],
        payment_status=doc["payment_status"],
        shipping_status=doc["shipping_status"] or NOT_SHIPPED,
        total=float(doc["total"]),
        currency=doc["currency"],
        tracking_number=doc.get("tracking_number") or "",
        line_count=len(doc["lines"]),
        cancelled=doc["payment_status"] == CANCELLED,
    )


def in_window(order_date: str, since: datetime) -> bool:
    """Whether a platform's order date is on or after `since` (an aware time). A date the
    platform did not give, or gave in a form not understood, counts as in the window: an
    order that cannot be placed outside it is checked rather than ignored."""
    moment = parse_time(order_date)
    return moment is None or moment >= since


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time; one without an offset is taken as UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def text(value: Any) -> str:
    """A platform's text field: "" for null or anything that is not text."""
    return value if isinstance(value, str) else ""


def number(value: Any) -> float:
    """A platform's money field: NaN when it is not a number, so it never equals the ERP's."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("nan")
    return float(value)


def count(value: Any) -> int:
    """How many items a platform's array holds (0 when it is not one)."""
    return len(value) if isinstance(value, list) else 0
