"""The dry-run file: exactly the requests Dotdigital would receive, whole lines only."""

from __future__ import annotations

import json

import jsonschema
import pytest

from order_export_tui.destinations.base import OrderChange
from order_export_tui.destinations.file.destination import FileDestination
from order_export_tui.transport.retry import Retrier, RetryPolicy
from tests.support.orders import VALID, changed
from tests.support.specs import DOTDIGITAL_INSIGHT, assert_valid

IMPORT_BODY = "#/components/schemas/v3_import_body"


async def write_batch(path, docs) -> None:  # type: ignore[no-untyped-def]
    destination = FileDestination(path, store_name="Demo webstore", collection="Orders")
    await destination.open()
    rejected = await destination.send_batch(
        [OrderChange(doc, "new", None) for doc in docs], Retrier(RetryPolicy(0, 0))
    )
    await destination.close()
    assert rejected == {}


async def test_each_batch_is_one_bulk_import_request_that_validates(tmp_path) -> None:
    path = tmp_path / "out" / "orders.jsonl"
    second = changed("order_id", "SO-100235")
    await write_batch(path, [VALID, second])
    await write_batch(path, [changed("shipping_status", "shipped")])

    requests = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["method"], r["path"]) for r in requests] == [("PUT", "/insightData/v3/import")] * 2
    for request in requests:
        assert_valid(request["body"], DOTDIGITAL_INSIGHT, IMPORT_BODY)
    body = requests[0]["body"]
    assert body["collectionName"] == "Orders"
    assert (body["collectionScope"], body["collectionType"]) == ("contact", "orders")
    record = body["records"][0]
    assert record["key"] == "SO-100234"
    assert record["contactIdentity"] == {"identifier": "email", "value": "jane@example.com"}
    assert record["json"] == {
        "id": "SO-100234",
        "email": "jane@example.com",
        "storeName": "Demo webstore",
        "purchaseDate": "2026-11-27T10:21:00+00:00",
        "currency": "EUR",
        "orderTotal": 29.2,
        "orderSubtotal": 20.0,
        "discountAmount": 0.0,
        "deliveryTotal": 5.0,
        "taxTotal": 4.2,
        "deliveryMethod": "DHL",
        "payment": "iDEAL",
        "shippingStatus": "not_shipped",
        "paymentStatus": "pending",
        "trackingNumber": "",
        "trackingUrl": "",
        "billingAddress": VALID["billing_address"],
        "deliveryAddress": VALID["shipping_address"],
        "products": [
            {"sku": "ITEM-001", "name": "Hat", "qty": 2, "price": 10.0, "priceInclTax": 12.1}
        ],
    }
    assert requests[1]["body"]["records"][0]["json"]["shippingStatus"] == "shipped"


def test_the_spec_check_itself_rejects_a_bad_body() -> None:
    with pytest.raises(jsonschema.ValidationError):
        assert_valid(
            {"collectionName": "Orders", "collectionScope": "contact", "records": []},
            DOTDIGITAL_INSIGHT,
            IMPORT_BODY,
        )


async def test_a_torn_line_from_a_crash_is_cut_before_writing(tmp_path) -> None:
    path = tmp_path / "orders.jsonl"
    await write_batch(path, [VALID])
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"method": "PUT", "path": "/insightData/v3/imp')

    await write_batch(path, [changed("order_id", "SO-2")])

    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["body"]["records"][0]["key"] for line in lines] == [
        "SO-100234",
        "SO-2",
    ]
