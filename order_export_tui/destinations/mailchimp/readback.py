"""Reading a Mailchimp store's orders back (interfaces.md §8).

`GET /ecommerce/stores/{store_id}/orders` in pages of 1,000 (`count`, the spec's maximum) from
`offset`, with `fields` naming only what `verify` compares, so a page stays small (about 300
bytes an order): 10,000 orders cost 10 requests. Each page goes through `MailchimpApi.request`,
so it is retried, waits out 429s, counts only Mailchimp's own answer and stops at a refused key
as every other request does. Mailchimp has no filter by order date on this route: every page
is read, and orders dated before the window are dropped as they come.

A store that does not exist holds no orders (an empty copy); any other refusal raises
`DestinationError`. Mailchimp lists orders in its own order, not by id: `read_mailchimp_copy`
spills them to a sorted copy on disk (`readback_spill`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from order_export_tui.destinations.base import DestinationError
from order_export_tui.destinations.mailchimp.api import MailchimpApi
from order_export_tui.destinations.readback import (
    CANCELLED,
    NOT_SHIPPED,
    PlatformOrder,
    count,
    in_window,
    number,
    text,
)
from order_export_tui.destinations.readback_spill import SortedSpill, platform_spill
from order_export_tui.transport.retry import Retrier

PAGE_SIZE = 1000  # the spec's maximum `count`
ORDER_FIELDS = (
    "id",
    "customer.email_address",
    "financial_status",
    "fulfillment_status",
    "order_total",
    "currency_code",
    "tracking_number",
    "processed_at_foreign",
    "cancelled_at_foreign",
    "lines.id",
)
FIELDS = ",".join([*(f"orders.{name}" for name in ORDER_FIELDS), "total_items"])


async def mailchimp_orders(
    api: MailchimpApi, store_id: str, since: datetime, retrier: Retrier
) -> AsyncIterator[PlatformOrder]:
    """The store's orders dated on or after `since`, page by page, in Mailchimp's order."""
    orders_path = f"/ecommerce/stores/{quote(store_id, safe='')}/orders"
    offset = 0
    while True:
        path = f"{orders_path}?count={PAGE_SIZE}&offset={offset}&fields={FIELDS}"
        answer = await api.request(retrier, "GET", path)
        if answer.not_found and offset == 0:
            return  # no store yet: it holds no orders
        if not answer.ok:
            raise DestinationError(
                api.redact(f"cannot read the store's orders (offset {offset}): {answer.reason()}")
            )
        page = answer.body.get("orders")
        if not isinstance(page, list):
            raise DestinationError(f"Mailchimp listed no orders array at offset {offset}")
        for item in page:
            if isinstance(item, dict):
                order = platform_order(item)
                if in_window(order.order_date, since):
                    yield order
        offset += len(page)
        if not page or offset >= answer.body["total_items"]:
            return


def platform_order(order: dict[str, Any]) -> PlatformOrder:
    """A Mailchimp order in the order document's terms: `financial_status` is the payment
    status, `fulfillment_status` the shipping status (absent: not shipped)."""
    customer = order.get("customer")
    financial = text(order.get("financial_status"))
    return PlatformOrder(
        order_id=text(order.get("id")),
        order_date=text(order.get("processed_at_foreign")),
        email=text(customer.get("email_address")) if isinstance(customer, dict) else "",
        payment_status=financial,
        shipping_status=text(order.get("fulfillment_status")) or NOT_SHIPPED,
        total=number(order.get("order_total")),
        currency=text(order.get("currency_code")),
        tracking_number=text(order.get("tracking_number")),
        line_count=count(order.get("lines")),
        cancelled=bool(text(order.get("cancelled_at_foreign"))) or financial == CANCELLED,
    )


async def read_mailchimp_copy(
    api: MailchimpApi, store_id: str, since: datetime, retrier: Retrier
) -> SortedSpill[PlatformOrder]:
    """The store's copy of the window, sorted by order id (one record per order). The caller
    closes it (`with`); a failure to read closes it here and raises."""
    spill = platform_spill(one_per_order=True)
    try:
        await spill.add_stream(mailchimp_orders(api, store_id, since, retrier))
    except BaseException:
        spill.close()
        raise
    return spill
