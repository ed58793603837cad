"""The Dotdigital Orders insight record of interfaces.md §5, built from an order document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from order_export_tui.orders import OrderDocument, order_text

IMPORT_PATH = "/insightData/v3/import"


def order_record_json(doc: OrderDocument, store_name: str) -> dict[str, Any]:
    """The record's `json`: one flat level plus addresses and products. The optional fields
    of §3 are added when the order has them: `couponCode`, and per product `url`,
    `imageUrl` and `categories` (absent rather than empty, as the §5 record shows)."""
    record: dict[str, Any] = {
        "id": doc["order_id"],
        "email": doc["customer"]["email"],
        "storeName": store_name,
        "purchaseDate": doc["order_date"],
        "currency": doc["currency"],
        "orderTotal": doc["total"],
        "orderSubtotal": doc["subtotal"],
        "discountAmount": doc["discount"],
        "deliveryTotal": doc["shipping_cost"],
        "taxTotal": doc["tax"],
        "deliveryMethod": doc["shipping_method"],
        "payment": doc["payment_method"],
        "shippingStatus": doc["shipping_status"],
        "paymentStatus": doc["payment_status"],
        "trackingNumber": doc["tracking_number"],
        "trackingUrl": doc["tracking_url"],
        "billingAddress": doc["billing_address"],
        "deliveryAddress": doc["shipping_address"],
        "products": [product_json(line) for line in doc["lines"]],
    }
    coupon = order_text(doc, "coupon_code")
    if coupon:
        record["couponCode"] = coupon
    return record


def product_json(line: dict[str, Any]) -> dict[str, Any]:
    product: dict[str, Any] = {
        "sku": line["sku"],
        "name": line["name"],
        "qty": line["quantity"],
        "price": line["unit_price"],
        "priceInclTax": line["unit_price_incl_tax"],
    }
    # `line_text` and `line_categories` inlined: this runs for every line a run sends.
    url, image_url, categories = line.get("product_url"), line.get("image_url"), None
    if url and isinstance(url, str):
        product["url"] = url
    if image_url and isinstance(image_url, str):
        product["imageUrl"] = image_url
    listed = line.get("categories")
    if listed and isinstance(listed, list):
        categories = [c for c in listed if isinstance(c, str)]
    if categories:
        product["categories"] = categories
    return product


def import_record(doc: OrderDocument, store_name: str) -> dict[str, Any]:
    """One record of a bulk import: keyed by the order id, the contact by e-mail."""
    return {
        "key": doc["order_id"],
        "contactIdentity": {"identifier": "email", "value": doc["customer"]["email"]},
        "json": order_record_json(doc, store_name),
    }


def bulk_import_body(
    docs: list[OrderDocument], *, collection: str, store_name: str
) -> dict[str, Any]:
    """The body of `PUT /insightData/v3/import` for these orders."""
    return {
        "collectionName": collection,
        "collectionScope": "contact",
        "collectionType": "orders",
        "records": [import_record(doc, store_name) for doc in docs],
    }


def single_record_path(doc: OrderDocument, collection: str) -> str:
    """The path of `PUT .../contacts/email/{email}/{collectionName}/{orderId}` for an order."""
    return record_path(doc["customer"]["email"], collection, doc["order_id"])


def record_path(email: str, collection: str, order_id: str) -> str:
    """`.../contacts/email/{email}/{collectionName}/{orderId}`: an order's record under one
    contact (upserted with PUT, deleted with DELETE when the order moves to another)."""
    contact = quote(email, safe="@")
    return f"/insightData/v3/contacts/email/{contact}/{quote(collection, safe='')}/" + quote(
        order_id, safe=""
    )


# --- contacts (Contacts API v3) ---------------------------------------------------------------
#
# A contact created for an order is its e-mail address and the customer's names, nothing
# more: no channel status (an existing contact keeps its own; Dotdigital gives a new one its
# default), no opt-in type, no consent record, no preference, and no list unless
# `dotdigital.contact_list_id` names one. Names only fill data fields that are empty, so an
# existing contact keeps what the marketing team set.


def contacts_import_body(
    customers: Sequence[dict[str, Any]], *, list_id: int = 0
) -> dict[str, Any]:
    """`PUT /contacts/v3/import`: match by e-mail, fill only empty data fields."""
    return {
        "mergeOption": "overwriteIfEmpty",
        "contacts": [contact_request(customer, list_id=list_id) for customer in customers],
    }


def contact_request(customer: dict[str, Any], *, list_id: int = 0) -> dict[str, Any]:
    request: dict[str, Any] = {
        "matchIdentifier": "email",
        "identifiers": {"email": customer["email"]},
        **contact_update_body(customer, list_id=list_id),
    }
    return request


def contact_update_body(customer: dict[str, Any], *, list_id: int = 0) -> dict[str, Any]:
    """`PATCH /contacts/v3/email/{email}?merge-option=overwrite-if-empty`: the same upsert for
    a single contact."""
    body: dict[str, Any] = {}
    data_fields = _name_fields(customer)
    if data_fields:
        body["dataFields"] = data_fields
    if list_id:
        body["lists"] = [list_id]
    return body


def _name_fields(customer: dict[str, Any]) -> dict[str, str]:
    fields = {"firstName": customer.get("first_name"), "lastName": customer.get("last_name")}
    return {name: value for name, value in fields.items() if isinstance(value, str) and value}
