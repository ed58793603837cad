"""Order documents as Mailchimp e-commerce request bodies (interfaces.md §5, "The Mailchimp
mapping"). Pure functions: no I/O, so each body can be checked against the spec on its own.

- Customer id: the MD5 hex digest of the lower-cased e-mail (Mailchimp's subscriber hash), so
  guests an ERP books under one shared customer number stay separate people; `opt_in_status`
  is always false (the webstore's own subscription flow decides opt-in).
- Product id and variant id: the line's `sku`; title, `url` and `image_url` from the line.
  A product's price is not an order's: a variant gets a price only when it is created.
- `financial_status` is the payment status as it is (`failed` included); `fulfillment_status`
  is `shipped` or `partially_shipped`, left out while `not_shipped`, with the tracking fields
  when known. `tracking_carrier` is the shipment's carrier, known from its tracking URL.
- `campaign_id`, `landing_site` and a promo for `coupon_code` when the order has them;
  `processed_at_foreign` is the order date, `cancelled_at_foreign` is set once cancelled.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from order_export_tui.orders import (
    OrderDocument,
    content_hash,
    line_text,
    order_text,
    shipment_carrier,
)
from order_export_tui.state import ExportedOrder

Body = dict[str, Any]

_TRACKING_FIELDS = ("tracking_number", "tracking_url")
CANCELLED = "cancelled"


def customer_id(doc: OrderDocument) -> str:
    """Mailchimp's own subscriber hash: the MD5 of the lower-cased e-mail."""
    email: str = doc["customer"]["email"]
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def financial_status(payment_status: str) -> str:
    """As it is: `failed` too, which triggers no order notification (a `pending` would say
    "thanks for your order" for a failed payment)."""
    return payment_status


def fulfillment_fields(doc: OrderDocument) -> Body:
    """`fulfillment_status` (absent while not shipped) and the tracking fields that are known;
    the carrier is the shipment's, read from its tracking URL, never the shipping method."""
    fields: Body = {}
    if doc["shipping_status"] != "not_shipped":
        fields["fulfillment_status"] = doc["shipping_status"]
    if doc.get("tracking_number"):
        fields["tracking_number"] = doc["tracking_number"]
    if doc.get("tracking_url"):
        fields["tracking_url"] = doc["tracking_url"]
        carrier = shipment_carrier(doc["tracking_url"])
        if carrier:
            fields["tracking_carrier"] = carrier
    return fields


def cancellation_fields(doc: OrderDocument) -> Body:
    """`cancelled_at_foreign` once the order is cancelled. The order document holds no time
    of cancellation: the time it is sent as cancelled stands in (never before the order)."""
    if doc["payment_status"] != CANCELLED:
        return {}
    placed = datetime.fromisoformat(doc["order_date"])
    now = datetime.now(UTC).replace(microsecond=0)
    return {"cancelled_at_foreign": max(now, placed).isoformat()}


def promo_fields(doc: OrderDocument) -> Body:
    """One promo for the coupon, with the order's discount as what it took off."""
    code = order_text(doc, "coupon_code")
    if not code:
        return {}
    return {"promos": [{"code": code, "type": "fixed", "amount_discounted": doc["discount"]}]}


def attribution_fields(doc: OrderDocument) -> Body:
    return _non_empty(
        [
            ("campaign_id", order_text(doc, "campaign_id")),
            ("landing_site", order_text(doc, "landing_site")),
        ]
    )


def _non_empty(fields: Iterable[tuple[str, Any]]) -> Body:
    return {key: value for key, value in fields if value not in ("", None)}


def customer_address(address: Mapping[str, str]) -> Body:
    return _non_empty(
        [
            ("address1", address.get("line1")),
            ("address2", address.get("line2")),
            ("city", address.get("city")),
            ("province", address.get("region")),
            ("postal_code", address.get("postcode")),
            ("country_code", address.get("country")),
        ]
    )


def order_address(address: Mapping[str, str], name: str) -> Body:
    return {**_non_empty([("name", name)]), **customer_address(address)}


def _names(doc: OrderDocument) -> Body:
    customer = doc["customer"]
    return _non_empty(
        [("first_name", customer.get("first_name")), ("last_name", customer.get("last_name"))]
    )


def customer_body(doc: OrderDocument) -> Body:
    """`PUT .../customers/{id}`: the order's customer, upserted."""
    body: Body = {
        "id": customer_id(doc),
        "email_address": doc["customer"]["email"],
        "opt_in_status": False,
        **_names(doc),
    }
    address = customer_address(doc["billing_address"])
    if address:
        body["address"] = address
    return body


def product_links(line: Mapping[str, Any]) -> Body:
    return _non_empty(
        [("url", line_text(line, "product_url")), ("image_url", line_text(line, "image_url"))]
    )


def product_body(line: Mapping[str, Any], price: float | None) -> Body:
    """`POST .../products`: one product per SKU, with one variant of the same id. `price`
    (the creating order's unit price) only when the order's currency is the store's."""
    return {
        "id": line["sku"],
        "title": _title(line),
        **product_links(line),
        "variants": [variant_body(line, price)],
    }


def variant_body(line: Mapping[str, Any], price: float | None = None) -> Body:
    """The product's one variant; `PUT .../variants/{sku}` of an existing product goes without
    a price, so no order ever overwrites what the product costs now."""
    body: Body = {"id": line["sku"], "title": _title(line), "sku": line["sku"]}
    body.update(product_links(line))
    if price is not None:
        body["price"] = price
    return body


def product_patch_body(line: Mapping[str, Any]) -> Body:
    """`PATCH .../products/{sku}`: what the item data says of an existing product."""
    return {"title": _title(line), **product_links(line)}


def product_hash(line: Mapping[str, Any]) -> str:
    """What a product was last sent as: title, URL and image (never a price)."""
    return content_hash(
        {"sku": line["sku"], "title": _title(line), **product_links(line)}  # type: ignore[arg-type]
    )


def _title(line: Mapping[str, Any]) -> str:
    return str(line.get("name") or line["sku"])


def line_body(line: Mapping[str, Any]) -> Body:
    quantity = line["quantity"]
    return {
        "id": str(line["line_no"]),
        "product_id": line["sku"],
        "product_variant_id": line["sku"],
        "quantity": int(quantity) if float(quantity).is_integer() else quantity,
        "price": line["unit_price"],
    }


def order_body(doc: OrderDocument) -> Body:
    """`POST .../orders`: the whole order."""
    name = " ".join(filter(None, _names(doc).values()))
    return {
        "id": doc["order_id"],
        "customer": {
            "id": customer_id(doc),
            "email_address": doc["customer"]["email"],
            "opt_in_status": False,
            **_names(doc),
        },
        "currency_code": doc["currency"],
        "order_total": doc["total"],
        "discount_total": doc["discount"],
        "tax_total": doc["tax"],
        "shipping_total": doc["shipping_cost"],
        "processed_at_foreign": doc["order_date"],
        "financial_status": financial_status(doc["payment_status"]),
        **fulfillment_fields(doc),
        **cancellation_fields(doc),
        **attribution_fields(doc),
        **promo_fields(doc),
        "billing_address": order_address(doc["billing_address"], name),
        "shipping_address": order_address(doc["shipping_address"], name),
        "lines": [line_body(line) for line in doc["lines"]],
    }


def order_patch_body(doc: OrderDocument) -> Body:
    """`PATCH .../orders/{id}` with the whole order: the create body without what a PATCH
    cannot change (the order id, the customer's id and e-mail). Lines keep their ids so
    Mailchimp updates them rather than adding more."""
    body = order_body(doc)
    del body["id"]
    body["customer"] = _names(doc)
    if not body["customer"]:
        del body["customer"]
    return body


def status_patch_body(doc: OrderDocument, previous: ExportedOrder | None) -> Body | None:
    """The PATCH body for an update that changed only the payment or shipping status (with
    the tracking fields); None when anything else may have changed (send the whole order).

    The content hash of what was last confirmed proves it: put the previous statuses back
    (and, for an order that was not shipped, empty tracking fields) and the hash must match.
    """
    if previous is None:
        return None
    for tracking in ({}, dict.fromkeys(_TRACKING_FIELDS, "")):
        candidate = {
            **doc,
            "shipping_status": previous.shipping_status,
            "payment_status": previous.payment_status,
            **tracking,
        }
        if content_hash(candidate) != previous.content_hash:
            continue
        tracking_changed = any(doc.get(key) != value for key, value in tracking.items())
        body: Body = {}
        if doc["payment_status"] != previous.payment_status:
            body["financial_status"] = financial_status(doc["payment_status"])
            body.update(cancellation_fields(doc))
        if doc["shipping_status"] != previous.shipping_status or tracking_changed:
            body.update(fulfillment_fields(doc))
        return body or None
    return None


def store_body(store_id: str, list_id: str, name: str, currency: str, *, syncing: bool) -> Body:
    """`POST /ecommerce/stores`. The audience (`list_id`) can never change afterwards."""
    return {
        "id": store_id,
        "list_id": list_id,
        "name": name,
        "currency_code": currency,
        "platform": "order-export",
        "is_syncing": syncing,
    }


def main_currency(docs: Iterable[OrderDocument]) -> str:
    """The most common currency among `docs` (alphabetically first on a tie): the currency a
    new store is created with."""
    counts = Counter(doc["currency"] for doc in docs)
    return min(counts, key=lambda code: (-counts[code], code))


def unsendable(doc: OrderDocument) -> str | None:
    """Why Mailchimp cannot take this otherwise valid order, or None."""
    for line in doc["lines"]:
        if not float(line["quantity"]).is_integer():
            return (
                f"line {line['line_no']}: quantity {line['quantity']} is not a whole number"
                " (Mailchimp takes whole quantities only)"
            )
    return None
