"""The Dotdigital Orders insight record of interfaces.md §5, built from an order document."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from order_export_tui.orders import OrderDocument

IMPORT_PATH = "/insightData/v3/import"


def order_record_json(doc: OrderDocument, store_name: str) -> dict[str, Any]:
    """The record's `json`: one flat level plus addresses and products."""
    return {
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
        "products": [
            {
                "sku": line["sku"],
                "name": line["name"],
                "qty": line["quantity"],
                "price": line["unit_price"],
                "priceInclTax": line["unit_price_incl_tax"],
            }
            for line in doc["lines"]
        ],
    }


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
    email = quote(doc["customer"]["email"], safe="@")
    return f"/insightData/v3/contacts/email/{email}/{quote(collection, safe='')}/" + quote(
        doc["order_id"], safe=""
    )
