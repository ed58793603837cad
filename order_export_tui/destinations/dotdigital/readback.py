"""Reading a Dotdigital Insight data collection's orders back (interfaces.md §8).

`GET /insightData/v3/contacts/{collectionName}` lists every contact's records of the
collection, a page at a time, the next page named by `_links.next.marker`. The spec lets
`limit` go up to 5,000 while its answer holds at most 1,000 records (`maxItems`): the largest
`limit` is asked and whatever page size comes back is followed, so both readings work and
10,000 orders cost 10 requests at worst (2 when 5,000 come back). Each page goes through
`DotdigitalApi.call`, so it is retried, waits out 429s and the flat-rate limit, counts only
Dotdigital's own answer and stops at refused credentials like every other request. There is
no filter by purchase date: records dated before the window are dropped as they come.

A collection that does not exist holds no orders (an empty copy); any other refusal raises
`DestinationError`. The records come in Dotdigital's order, and a record per contact: an order
moved to another customer may be held twice until the old contact's record is deleted, so
`read_dotdigital_copy` keeps one record per order and e-mail address, sorted by order id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from order_export_tui.destinations.base import DestinationError
from order_export_tui.destinations.dotdigital.answers import json_body, platform_error
from order_export_tui.destinations.dotdigital.api import DotdigitalApi
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
from order_export_tui.transport.answers import not_the_platform, read_json_object
from order_export_tui.transport.retry import Retrier

PAGE_LIMIT = 5000  # the spec's largest `limit`; an answer holds at most 1,000 (`maxItems`)


def records_page(response: httpx.Response, what: str) -> None:
    """The documented answer: an object with its `_items` array and `_links`."""
    body = read_json_object(response, what, required={"_items": list, "_links": dict})
    if any(not isinstance(item, dict) for item in body["_items"]):
        raise not_the_platform(response, what, "a record in `_items` is not an object")


async def dotdigital_orders(
    api: DotdigitalApi, collection: str, since: datetime, retrier: Retrier
) -> AsyncIterator[PlatformOrder]:
    """The collection's order records dated on or after `since`, page by page, in
    Dotdigital's order (an order held by two contacts comes twice)."""
    path = f"/insightData/v3/contacts/{quote(collection, safe='')}"
    marker = ""
    pages = 0
    while True:
        params = {"limit": str(PAGE_LIMIT)}
        if marker:
            params["marker"] = marker
        response = await api.call(
            retrier,
            "GET Insight data records",
            "GET",
            path,
            params=params,
            documented=(200,),
            check=records_page,
        )
        if response.status_code == 404 and pages == 0:
            return  # no collection yet: it holds no orders
        if response.status_code != 200:
            raise DestinationError(
                f"Dotdigital cannot list the records of the collection {collection!r}"
                f" (dotdigital.collection): {platform_error(response)}"
            )
        pages += 1
        body = json_body(response)
        for record in body["_items"]:
            order = platform_order(record)
            if in_window(order.order_date, since):
                yield order
        following = _next_marker(body["_links"])
        if not body["_items"] or not following or following == marker:
            return
        marker = following


def _next_marker(links: dict[str, Any]) -> str:
    following = links.get("next")
    return text(following.get("marker")) if isinstance(following, dict) else ""


def platform_order(record: dict[str, Any]) -> PlatformOrder:
    """A record of the Orders collection (interfaces.md §5) in the order document's terms."""
    value = record.get("json")
    data: dict[str, Any] = value if isinstance(value, dict) else {}
    payment = text(data.get("paymentStatus"))
    return PlatformOrder(
        order_id=text(record.get("key")) or text(data.get("id")),
        order_date=text(data.get("purchaseDate")),
        email=text(data.get("email")),
        payment_status=payment,
        shipping_status=text(data.get("shippingStatus")) or NOT_SHIPPED,
        total=number(data.get("orderTotal")),
        currency=text(data.get("currency")),
        tracking_number=text(data.get("trackingNumber")),
        line_count=count(data.get("products")),
        cancelled=payment == CANCELLED,
    )


async def read_dotdigital_copy(
    api: DotdigitalApi, collection: str, since: datetime, retrier: Retrier
) -> SortedSpill[PlatformOrder]:
    """The collection's copy of the window, sorted by order id (one record per order and
    contact). The caller closes it (`with`); a failure to read closes it here and raises."""
    spill = platform_spill(one_per_order=False)
    try:
        await spill.add_stream(dotdigital_orders(api, collection, since, retrier))
    except BaseException:
        spill.close()
        raise
    return spill
