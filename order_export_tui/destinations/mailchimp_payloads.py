"""Order documents as Mailchimp e-commerce request bodies (interfaces.md §5, "The Mailchimp
mapping"). Pure functions: no I/O, so each body can be checked against the spec on its own.

- Customer id: the order's `customer.id`, or an SHA-256 prefix of it when it is longer than
  the 50 characters Mailchimp allows; `opt_in_status` is always false (the webstore's own
  subscription flow decides opt-in).
- Product id and variant id: the line's `sku`.
- `financial_status` is the payment status (`failed` goes as `pending`); `fulfillment_status`
  is `shipped` or `partially_shipped`, left out while `not_shipped`, with the tracking fields
  when known.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from order_export_tui.orders import OrderDocument, content_hash
from order_export_tui.state import ExportedOrder

Body = dict[str, Any]

MAX_CUSTOMER_ID_LENGTH = 50
_TRACKING_FIELDS = ("tracking_number", "tracking_url")


def customer_id(doc: OrderDocument) -> str:
    raw: str = doc["customer"]["id"]
    if len(raw) <= MAX_CUSTOMER_ID_LENGTH:
        return raw
    return hashlib.sha256(raw.encode()).hexdigest()[:MAX_CUSTOMER_ID_LENGTH]


def financial_status(payment_status: str) -> str:
    # Mailchimp knows no failed payment; the order is still waiting to be paid.
    return "pending" if payment_status == "failed" else payment_status


def fulfillment_fields(doc: OrderDocument) -> Body:
    """`fulfillment_status` (absent while not shipped) and the tracking fields that are known."""
    fields: Body = {}
    if doc["shipping_status"] != "not_shipped":
        fields["fulfillment_status"] = doc["shipping_status"]
    if doc.get("tracking_number"):
        fields["tracking_number"] = doc["tracking_number"]
        if doc.get("shipping_method"):
            fields["tracking_carrier"] = doc["shipping_method"]
    if doc.get("tracking_url"):
        fields["tracking_url"] = doc["tracking_url"]
    return fields


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


def product_body(line: Mapping[str, Any], price: float | None) -> Body:
    """`POST .../products`: one product per SKU, with one variant of the same id."""
    return {
        "id": line["sku"],
        "title": _title(line),
        "variants": [variant_body(line, price)],
    }


def variant_body(line: Mapping[str, Any], price: float | None) -> Body:
    """`PUT .../products/{sku}/variants/{sku}`. `price` is left out when the order's currency
    is not the store's: Mailchimp reads a variant's price in the store's currency."""
    body: Body = {"id": line["sku"], "title": _title(line), "sku": line["sku"]}
    if price is not None:
        body["price"] = price
    return body


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
