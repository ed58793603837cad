"""A loopback Microsoft Dynamics 365 Business Central (API v2.0) with its Microsoft identity
platform token endpoint, built from Microsoft's API v2.0 reference, for the tests and for
trying order-export without a tenant.

    python -m tests.fakes.business_central --port 8093 [--orders 500] [--days 45] [--seed 1] \\
        [--no-activity] [--tenant contoso] [--environment production] [--client-id ID] \\
        [--client-secret demo-secret] [--latency-ms 20] [--token-lifetime 3599] \\
        [--max-page-size 20000] [--fail-rate 0.1]

prints the `[erp.business_central]` settings that point at it and serves until Ctrl-C. In a
test: `with BusinessCentralFake() as fake: ... fake.settings() ...` (127.0.0.1, a free port).

What it does as Business Central and the identity platform do:
- `POST /<tenant>/oauth2/v2.0/token`: client credentials (form body), scope
  `https://api.businesscentral.dynamics.com/.default`; tokens expire after `token_lifetime`
  seconds. Refusals carry the platform's AADSTS codes: 90002 unknown tenant, 700016 unknown
  client id (400), 7000215 wrong secret (401 `invalid_client`), 70011 bad scope.
- `GET /v2.0/<tenant>/<environment>/api/v2.0/companies[(<id>)]`, and below a company
  `customers`, `shipmentMethods`, `salesOrders`, `salesShipments`, `salesInvoices`,
  `salesCreditMemos` (`/$count`
  too), each with the properties of its reference page; `$filter` (eq ne gt ge lt le, and, or,
  parentheses; strings, numbers, dates, datetimes, GUIDs, booleans), `$select`, `$expand`
  (lines and `customer`, with a nested `$select`), `$top` (a limit on the whole result) and
  server-driven paging: `Prefer: odata.maxpagesize=N` (at most `max_page_size`), then
  `@odata.nextLink` with a `$skiptoken` (the last key sent, so deletions between pages skip
  nothing). Entities come in key (`number`) order.
- `salesCreditMemos` (posted sales credit memos: `invoiceId` / `invoiceNumber` name the
  invoice credited; `post_credit_memo`, a draft with `status="Draft"`), `delete_order` (an
  order cancelled: deleted unposted) and `invoice_without_shipment` (invoiced, never shipped).
- `POST .../salesOrders(<id>)/Microsoft.NAV.shipAndInvoice` (the documented bound action),
  and from Python `post_shipment` (all that is left, or chosen quantities per line) and
  `post_invoice`: posted shipments and invoices copy the order's header (with `orderNumber`),
  lines keep the order line's `sequence`, the order's `shippedQuantity`, `invoicedQuantity`,
  `fullyShipped` and `lastModifiedDateTime` follow, and an order fully shipped and invoiced
  is deleted from `salesOrders`, as Business Central deletes it.
- Errors are `{"error": {"code", "message"}}`: 401 `Authentication_InvalidCredentials` (no,
  unknown or expired token, or an app not registered: `app_registered = False`), 403 for the
  entity sets in `forbidden` (the permission error's text), 404 `BadRequest_NotFound` for an
  unknown environment or company, 400 `BadRequest` for a query it cannot parse.
Faults: a planned fault for the next matching request (`plan`, e.g. 429 with `Retry-After`),
requests that always fail (`break_requests`), and, at `fail_rate`, a fault drawn from a seeded
`random.Random` (503, 429 with `Retry-After: 1`, or a dropped connection). `latency` is added
to every request; `revoke_tokens()` ends every token issued so far.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hmac
import random
import re
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from tests.support.loopback_server import Fault, LoopbackServer, Reply, Request

SCOPE = "https://api.businesscentral.dynamics.com/.default"
DEFAULT_MAX_PAGE_SIZE = 20_000  # Business Central online's page size
Json = dict[str, Any]

_ADDRESS = ("AddressLine1", "AddressLine2", "City", "Country", "State", "PostCode")
_PARTIES = tuple(f"{party}{part}" for party in ("sellTo", "billTo", "shipTo") for part in _ADDRESS)

# The properties of each resource, as Microsoft's API v2.0 reference lists them.
PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": (
        "id", "systemVersion", "name", "displayName", "businessProfileId",
        "systemCreatedAt", "systemModifiedAt",
    ),
    "customers": (
        "id", "number", "displayName", "type", "addressLine1", "addressLine2", "city", "state",
        "country", "postalCode", "phoneNumber", "email", "website", "salespersonCode",
        "balanceDue", "creditLimit", "taxLiable", "taxAreaId", "taxAreaDisplayName",
        "taxRegistrationNumber", "currencyId", "currencyCode", "paymentTermsId",
        "shipmentMethodId", "paymentMethodId", "blocked", "lastModifiedDateTime",
    ),
    "shipmentMethods": ("id", "code", "displayName", "lastModifiedDateTime"),
    "salesOrders": (
        "id", "number", "externalDocumentNumber", "orderDate", "postingDate", "customerId",
        "customerNumber", "customerName", "billToName", "billToCustomerId",
        "billToCustomerNumber", "shipToName", "shipToContact", *_PARTIES,
        "shortcutDimension1Code", "shortcutDimension2Code", "currencyId", "currencyCode",
        "pricesIncludeTax", "paymentTermsId", "shipmentMethodId", "salesperson",
        "partialShipping", "requestedDeliveryDate", "discountAmount", "discountAppliedBeforeTax",
        "totalAmountExcludingTax", "totalTaxAmount", "totalAmountIncludingTax", "fullyShipped",
        "status", "lastModifiedDateTime", "phoneNumber", "email",
    ),
    "salesOrderLines": (
        "id", "documentId", "sequence", "itemId", "accountId", "lineType", "lineObjectNumber",
        "description", "unitOfMeasureId", "unitOfMeasureCode", "quantity", "unitPrice",
        "discountAmount", "discountPercent", "discountAppliedBeforeTax", "amountExcludingTax",
        "taxCode", "taxPercent", "totalTaxAmount", "amountIncludingTax",
        "invoiceDiscountAllocation", "netAmount", "netTaxAmount", "netAmountIncludingTax",
        "shipmentDate", "shippedQuantity", "invoicedQuantity", "invoiceQuantity",
        "shipQuantity", "itemVariantId",
    ),
    "salesShipments": (
        "id", "number", "externalDocumentNumber", "invoiceDate", "postingDate", "dueDate",
        "customerPurchaseOrderReference", "customerNumber", "customerName", "billToName",
        "billToCustomerNumber", "shipToName", "shipToContact", *_PARTIES, "currencyCode",
        "orderNumber", "paymentTermsCode", "shipmentMethodCode", "salesperson",
        "pricesIncludeTax", "lastModifiedDateTime", "phoneNumber", "email",
    ),
    "salesShipmentLines": (
        "id", "documentId", "documentNo", "sequence", "lineType", "lineObjectNumber",
        "description", "unitOfMeasureCode", "unitPrice", "quantity", "discountPercent",
        "taxPercent", "shipmentDate",
    ),
    "salesInvoices": (
        "id", "number", "externalDocumentNumber", "invoiceDate", "postingDate", "dueDate",
        "customerPurchaseOrderReference", "customerId", "customerNumber", "customerName",
        "billToName", "billToCustomerId", "billToCustomerNumber", "shipToName", "shipToContact",
        *_PARTIES, "currencyId", "shortcutDimension1Code", "shortcutDimension2Code",
        "currencyCode", "orderId", "orderNumber", "paymentTermsId", "shipmentMethodId",
        "salesperson", "pricesIncludeTax", "remainingAmount", "discountAmount",
        "discountAppliedBeforeTax", "totalAmountExcludingTax", "totalTaxAmount",
        "totalAmountIncludingTax", "status", "lastModifiedDateTime", "phoneNumber", "email",
    ),
    "salesInvoiceLines": (
        "id", "documentId", "sequence", "itemId", "accountId", "lineType", "lineObjectNumber",
        "description", "unitOfMeasureId", "unitOfMeasureCode", "unitPrice", "quantity",
        "discountAmount", "discountPercent", "discountAppliedBeforeTax", "amountExcludingTax",
        "taxCode", "taxPercent", "totalTaxAmount", "amountIncludingTax",
        "invoiceDiscountAllocation", "netAmount", "netTaxAmount", "netAmountIncludingTax",
        "shipmentDate", "itemVariantId",
    ),
    "salesCreditMemos": (
        "id", "number", "externalDocumentNumber", "creditMemoDate", "postingDate", "dueDate",
        "customerId", "customerNumber", "customerName", "billToName", "billToCustomerId",
        "billToCustomerNumber", *(f"{party}{part}" for party in ("sellTo", "billTo")
        for part in _ADDRESS), "currencyId", "currencyCode", "paymentTermsId",
        "shipmentMethodId", "salesperson", "pricesIncludeTax", "discountAmount",
        "discountAppliedBeforeTax", "totalAmountExcludingTax", "totalTaxAmount",
        "totalAmountIncludingTax", "status", "lastModifiedDateTime", "invoiceId",
        "invoiceNumber", "phoneNumber", "email", "customerReturnReasonId",
    ),
}  # fmt: skip

# Navigation properties: entity set -> name -> (target entity set, is a collection).
NAVIGATION: dict[str, dict[str, tuple[str, bool]]] = {
    "salesOrders": {
        "salesOrderLines": ("salesOrderLines", True),
        "customer": ("customers", False),
        "shipmentMethod": ("shipmentMethods", False),
    },
    "salesShipments": {
        "salesShipmentLines": ("salesShipmentLines", True),
        "customer": ("customers", False),
    },
    "salesInvoices": {
        "salesInvoiceLines": ("salesInvoiceLines", True),
        "customer": ("customers", False),
        "shipmentMethod": ("shipmentMethods", False),
    },
}
ENTITY_TYPES = {
    "companies": "company",
    "customers": "customer",
    "shipmentMethods": "shipmentMethod",
    "salesOrders": "salesOrder",
    "salesShipments": "salesShipment",
    "salesInvoices": "salesInvoice",
    "salesCreditMemos": "salesCreditMemo",
    "salesOrderLines": "salesOrderLine",
    "salesShipmentLines": "salesShipmentLine",
    "salesInvoiceLines": "salesInvoiceLine",
}
_ZERO_GUID = "00000000-0000-0000-0000-000000000000"
_API_PATH = re.compile(
    r"^/v2\.0/(?P<tenant>[^/]+)/(?P<environment>[^/]+)/api/"
    r"(?P<route>v2\.0|[A-Za-z0-9]+/[A-Za-z0-9]+/(?:v[0-9.]+|beta))(?P<rest>/.*)?$"
)
STANDARD_ROUTE = "v2.0"
_COMPANY_PATH = re.compile(
    r"^/companies(?:\((?P<company>[^)]*)\)"
    r"(?:/(?P<set>[A-Za-z]+)(?:\((?P<key>[^)]*)\))?(?:/(?P<tail>[^/]+))?)?)?$"
)


class ODataError(Exception):
    """An answer in Business Central's error shape."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: Json = {"error": {"code": code, "message": message}}
        self.headers = dict(headers or {})


class TokenRefusal(Exception):
    """An answer in the identity platform's error shape."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace, correlation = uuid.uuid4(), uuid.uuid4()
        self.body: Json = {
            "error": error,
            "error_description": (
                f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
                f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
            ),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": str(trace),
            "correlation_id": str(correlation),
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }


@dataclass
class Exchange:
    """One request as the fake saw it. `status` 0: the connection was dropped."""

    method: str
    path: str  # without the query
    query: dict[str, str]
    prefer: str
    status: int


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money(value: float | Decimal) -> float:
    return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def item_line(
    item: str, description: str, quantity: float, unit_price: float, tax_percent: float = 21.0
) -> Json:
    """An order line to give `add_order`."""
    return {
        "lineType": "Item",
        "lineObjectNumber": item,
        "description": description,
        "quantity": quantity,
        "unitPrice": unit_price,
        "taxPercent": tax_percent,
    }


def comment_line(text: str) -> Json:
    return {
        "lineType": "Comment",
        "lineObjectNumber": "",
        "description": text,
        "quantity": 0,
        "unitPrice": 0,
        "taxPercent": 0,
    }


class _Table:
    """Rows by key, and the keys in order (for paging from a skiptoken)."""

    def __init__(self) -> None:
        self.rows: dict[str, Json] = {}
        self.keys: list[str] = []

    def put(self, key: str, row: Json) -> None:
        if key not in self.rows:
            bisect.insort(self.keys, key)
        self.rows[key] = row

    def delete(self, key: str) -> None:
        if self.rows.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]

    def after(self, key: str | None) -> Iterator[Json]:
        index = 0 if key is None else bisect.bisect_right(self.keys, key)
        while index < len(self.keys):
            row = self.rows.get(self.keys[index])
            index += 1
            if row is not None:
                yield row

    def __len__(self) -> int:
        return len(self.rows)


class BusinessCentralFake(LoopbackServer):
    """The fake's data and observations; tests touch them under `lock`."""

    methods = ("GET", "POST")
    json_content_type = "application/json; odata.metadata=minimal; charset=utf-8"
    json_separators = (",", ":")

    def __init__(
        self,
        *,
        tenant: str = "contoso",
        environment: str = "production",
        client_id: str = "11111111-2222-3333-4444-555555555555",
        client_secret: str = "fake-client-secret",
        company_name: str = "Demo Webstore Ltd.",
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float = 3599.0,
        latency: float = 0.0,
        max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
        fail_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.tenant = tenant
        self.environment = environment
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.latency = latency
        self.max_page_size = max_page_size
        self.fail_rate = fail_rate
        self.app_registered = True
        self.forbidden: set[str] = set()
        # Custom API pages an administrator published: route -> entity set -> (its fields,
        # the one holding the posted shipment's Package Tracking No.).
        self.custom_pages: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {}
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self.company: Json = {
            "id": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "systemVersion": "25.0.23364.25225",
            "name": company_name,
            "displayName": company_name,
            "businessProfileId": "",
            "systemCreatedAt": "2024-01-01T00:00:00Z",
            "systemModifiedAt": "2024-01-01T00:00:00Z",
        }
        self.tables: dict[str, _Table] = {
            name: _Table()
            for name in (
                "customers",
                "shipmentMethods",
                "salesOrders",
                "salesShipments",
                "salesInvoices",
                "salesCreditMemos",
            )
        }
        self._by_id: dict[str, dict[str, Json]] = {name: {} for name in self.tables}
        self._numbers = {
            "salesOrders": 100000,
            "salesShipments": 200000,
            "salesInvoices": 300000,
            "salesCreditMemos": 400000,
        }
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.tokens_issued = 0
        self.looping_next_link = False  # every page after the first links to itself
        self.exchanges: list[Exchange] = []
        self.secrets_seen: list[str] = []  # every client_secret sent to the token endpoint
        super().__init__(host, port)
        for code, name in (("DHL", "DHL Parcel"), ("POSTNL", "PostNL"), ("PICKUP", "Pickup")):
            self.add_shipment_method(code, name)

    # --- where it listens (`url`: the base's) ------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2.0/{self.tenant}/{self.environment}/api/v2.0"

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.tenant}/oauth2/v2.0/token"

    def settings(self, client_secret_env: str = "BC_CLIENT_SECRET") -> dict[str, str]:
        """The `[erp.business_central]` table that points at this fake."""
        return {
            "base_url": self.base_url,
            "company_id": self.company["id"],
            "tenant_id": self.tenant,
            "client_id": self.client_id,
            "client_secret_env": client_secret_env,
            "token_url": self.token_url,
        }

    # --- faults (`plan`, `break_requests`: the base's) and observations ---------------------

    def server_error(self, status: int) -> Json:
        return _server_error(status)

    def rate_limited(self, seconds: int) -> Fault:
        return too_many_requests(seconds)

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (as if it had expired)."""
        with self.lock:
            self._tokens.clear()

    def requests_to(self, entity_set: str, method: str = "GET") -> list[Exchange]:
        """Requests for an entity set's collection (not its `$count`)."""
        suffix = f"/{entity_set}"
        with self.lock:
            return [e for e in self.exchanges if e.method == method and e.path.endswith(suffix)]

    def order_numbers(self) -> list[str]:
        with self.lock:
            return list(self.tables["salesOrders"].keys)

    # --- data: master data and orders -------------------------------------------------------

    def add_shipment_method(self, code: str, name: str) -> Json:
        method = {
            "id": self._new_id(),
            "code": code,
            "displayName": name,
            "lastModifiedDateTime": _now_text(),
        }
        self._put("shipmentMethods", code, method)
        return method

    def add_customer(
        self,
        number: str,
        name: str,
        email: str,
        *,
        kind: str = "Person",
        address: Mapping[str, str] | None = None,
    ) -> Json:
        address = dict(address or {})
        customer = {
            "id": self._new_id(),
            "number": number,
            "displayName": name,
            "type": kind,
            "addressLine1": address.get("line1", ""),
            "addressLine2": address.get("line2", ""),
            "city": address.get("city", ""),
            "state": address.get("region", ""),
            "country": address.get("country", ""),
            "postalCode": address.get("postcode", ""),
            "phoneNumber": "",
            "email": email,
            "website": "",
            "salespersonCode": "",
            "balanceDue": 0,
            "creditLimit": 0,
            "taxLiable": False,
            "taxAreaId": _ZERO_GUID,
            "taxAreaDisplayName": "",
            "taxRegistrationNumber": "",
            "currencyId": _ZERO_GUID,
            "currencyCode": "EUR",
            "paymentTermsId": _ZERO_GUID,
            "shipmentMethodId": _ZERO_GUID,
            "paymentMethodId": _ZERO_GUID,
            "blocked": " ",
            "lastModifiedDateTime": _now_text(),
        }
        self._put("customers", number, customer)
        return customer

    def add_order(
        self,
        *,
        order_date: date,
        customer: str,
        lines: Sequence[Mapping[str, Any]],
        number: str | None = None,
        email: str | None = None,
        currency: str = "EUR",
        discount: float = 0.0,
        prices_include_tax: bool = False,
        shipment_method: str | None = "DHL",
        bill_to: Mapping[str, str] | None = None,
        ship_to: Mapping[str, str] | None = None,
    ) -> Json:
        """A sales order of an existing customer. `email` None: the customer's e-mail;
        addresses default to the customer's; `shipment_method` is a code or None."""
        with self.lock:
            buyer = self.tables["customers"].rows[customer]
            number = number or self._next_number("salesOrders", "SO")
            sell_to = _customer_address(buyer)
            order: Json = {
                "id": self._new_id(),
                "number": number,
                "externalDocumentNumber": "",
                "orderDate": order_date.isoformat(),
                "postingDate": order_date.isoformat(),
                "customerId": buyer["id"],
                "customerNumber": customer,
                "customerName": buyer["displayName"],
                "billToName": buyer["displayName"],
                "billToCustomerId": buyer["id"],
                "billToCustomerNumber": customer,
                "shipToName": buyer["displayName"],
                "shipToContact": "",
                **_party("sellTo", sell_to),
                **_party("billTo", bill_to if bill_to is not None else sell_to),
                **_party("shipTo", ship_to if ship_to is not None else sell_to),
                "shortcutDimension1Code": "",
                "shortcutDimension2Code": "",
                "currencyId": _ZERO_GUID,
                "currencyCode": currency,
                "pricesIncludeTax": prices_include_tax,
                "paymentTermsId": _ZERO_GUID,
                "shipmentMethodId": (
                    self.tables["shipmentMethods"].rows[shipment_method]["id"]
                    if shipment_method
                    else _ZERO_GUID
                ),
                "salesperson": "",
                "partialShipping": True,
                "requestedDeliveryDate": "0001-01-01",
                "discountAmount": discount,
                "discountAppliedBeforeTax": True,
                "fullyShipped": False,
                "status": "Open",
                "lastModifiedDateTime": _now_text(),
                "phoneNumber": "",
                "email": buyer["email"] if email is None else email,
            }
            order["_lines"] = [
                self._order_line(order, index, spec) for index, spec in enumerate(lines, 1)
            ]
            _set_totals(order, order["_lines"], discount)
            self._put("salesOrders", number, order)
            return order

    def generate(
        self, orders: int, days: int, *, seed: int = 1, activity: bool = True
    ) -> list[str]:
        """`orders` realistic orders dated over the last `days` days (today included): some
        with the e-mail only on the customer, a comment line, a discount. With `activity`,
        of those older than three days some are partly shipped, some shipped, some shipped
        and invoiced (gone), a day or three after their order date. Returns their numbers."""
        rng = random.Random(seed)
        today = date.today()
        numbers = []
        with self.lock:
            customers = self._generate_customers(rng, max(10, orders // 3))
            for _ in range(orders):
                age = rng.randrange(days)
                buyer = rng.choice(customers)
                lines = [
                    item_line(
                        f"ITEM-{rng.randrange(1, 400):04d}",
                        f"{rng.choice(_ADJECTIVES)} {rng.choice(_PRODUCTS)}",
                        rng.choice((1, 1, 1, 2, 2, 3)),
                        rng.choice((9.95, 14.95, 19.95, 24.95, 39.95, 59.95, 89.95)),
                    )
                    for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))
                ]
                if rng.random() < 0.1:
                    lines.insert(1, comment_line("Gift wrap, please"))
                order_date = today - timedelta(days=age)
                order = self.add_order(
                    order_date=order_date,
                    customer=buyer,
                    lines=lines,
                    email="" if rng.random() < 0.15 else None,
                    discount=5.0 if rng.random() < 0.1 else 0.0,
                    shipment_method=rng.choice(("DHL", "DHL", "POSTNL", "PICKUP", None)),
                )
                numbers.append(order["number"])
                if activity and age > 3:
                    posted = order_date + timedelta(days=rng.randrange(1, 4))
                    self._generate_activity(rng, order["number"], posted)
        return numbers

    def _generate_customers(self, rng: random.Random, count: int) -> list[str]:
        numbers = []
        for index in range(count):
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            number = f"C{10000 + index}"
            city, postcode, country = rng.choice(_CITIES)
            self.add_customer(
                number,
                f"{first} {last}",
                f"{first}.{last}.{index}@example.com".lower().replace(" ", ""),
                address={
                    "line1": f"{rng.choice(_STREETS)} {rng.randrange(1, 200)}",
                    "city": city,
                    "postcode": postcode,
                    "country": country,
                },
            )
            numbers.append(number)
        return numbers

    def _generate_activity(self, rng: random.Random, number: str, posted: date) -> None:
        roll = rng.random()
        if roll < 0.3:
            self.post_shipment(number, posting_date=posted)
            self.post_invoice(number, posting_date=posted)
        elif roll < 0.4:
            self.post_shipment(number, posting_date=posted)
        elif roll < 0.5:
            order = self.tables["salesOrders"].rows[number]
            first = next(line for line in order["_lines"] if line["quantity"] > 0)
            self.post_shipment(number, {first["sequence"]: 1}, posting_date=posted)

    # --- data: posting ----------------------------------------------------------------------

    def publish_tracking_page(
        self, route: str = "contoso/shipping/v1.0", field: str = "packageTrackingNo"
    ) -> None:
        """The custom API page of the README's AL: posted shipments with their Package
        Tracking No. (API v2.0's own pages cannot be extended)."""
        fields = ("id", "number", "orderNumber", "postingDate", "lastModifiedDateTime", field)
        with self.lock:
            self.custom_pages.setdefault(route, {})["salesShipments"] = (fields, field)

    def post_shipment(
        self,
        order_number: str,
        quantities: Mapping[int, float] | None = None,
        *,
        posting_date: date | None = None,
        tracking_number: str = "",
    ) -> str:
        """Post a shipment of `quantities` (line sequence -> quantity), by default all that is
        left to ship; returns its number."""
        with self.lock:
            order = self.tables["salesOrders"].rows[order_number]
            lines = order["_lines"]
            wanted = quantities or {
                line["sequence"]: line["quantity"] - line["shippedQuantity"]
                for line in lines
                if line["lineType"] != "Comment"
            }
            shipped = [
                (line, wanted[line["sequence"]])
                for line in lines
                if wanted.get(line["sequence"], 0) > 0
            ]
            if not shipped:
                raise ValueError(f"order {order_number} has nothing to ship")
            number = self._next_number("salesShipments", "SH")
            header = _posted_header(order, "salesShipments")
            shipment = {
                **header,
                "id": self._new_id(),
                "number": number,
                "postingDate": (posting_date or date.today()).isoformat(),
                "invoiceDate": (posting_date or date.today()).isoformat(),
                "dueDate": (posting_date or date.today()).isoformat(),
                "customerPurchaseOrderReference": "",
                "orderNumber": order_number,
                "paymentTermsCode": "",
                "shipmentMethodCode": self._method_code(order["shipmentMethodId"]),
                "_tracking": tracking_number,  # Package Tracking No., no API v2.0 field
            }
            shipment["_lines"] = [
                {
                    "id": self._new_id(),
                    "documentId": shipment["id"],
                    "documentNo": number,
                    "sequence": line["sequence"],
                    "lineType": line["lineType"],
                    "lineObjectNumber": line["lineObjectNumber"],
                    "description": line["description"],
                    "unitOfMeasureCode": line["unitOfMeasureCode"],
                    "unitPrice": line["unitPrice"],
                    "quantity": quantity,
                    "discountPercent": 0,
                    "taxPercent": line["taxPercent"],
                    "shipmentDate": shipment["postingDate"],
                }
                for line, quantity in shipped
            ]
            for line, quantity in shipped:
                line["shippedQuantity"] += quantity
                line["shipQuantity"] = line["quantity"] - line["shippedQuantity"]
            order["fullyShipped"] = all(
                line["shippedQuantity"] >= line["quantity"] for line in lines
            )
            stamp = _now_text()
            order["lastModifiedDateTime"] = shipment["lastModifiedDateTime"] = stamp
            self._put("salesShipments", number, shipment)
            return number

    def post_invoice(self, order_number: str, *, posting_date: date | None = None) -> str:
        """Invoice what is shipped and not invoiced yet; an order then fully shipped and
        invoiced is deleted, as Business Central does. Returns the invoice's number."""
        with self.lock:
            order = self.tables["salesOrders"].rows[order_number]
            lines = order["_lines"]
            to_invoice = [
                (line, line["shippedQuantity"] - line["invoicedQuantity"])
                for line in lines
                if line["shippedQuantity"] > line["invoicedQuantity"]
            ]
            if not to_invoice:
                raise ValueError(f"order {order_number} has nothing shipped to invoice")
            number = self._next_number("salesInvoices", "INV")
            day = (posting_date or date.today()).isoformat()
            invoice = {
                **_posted_header(order, "salesInvoices"),
                "id": self._new_id(),
                "number": number,
                "invoiceDate": day,
                "postingDate": day,
                "dueDate": day,
                "customerPurchaseOrderReference": "",
                "orderId": order["id"],
                "orderNumber": order_number,
                "status": "Open",
            }
            share = sum(q * line["unitPrice"] for line, q in to_invoice) / max(
                sum(line["quantity"] * line["unitPrice"] for line in lines), 0.01
            )
            invoice["_lines"] = [
                self._invoice_line(invoice, line, quantity) for line, quantity in to_invoice
            ]
            _set_totals(invoice, invoice["_lines"], _money(order["discountAmount"] * share))
            invoice["remainingAmount"] = invoice["totalAmountIncludingTax"]
            for line, quantity in to_invoice:
                line["invoicedQuantity"] += quantity
            self._put("salesInvoices", number, invoice)
            if all(
                line["quantity"] == line["shippedQuantity"] == line["invoicedQuantity"]
                for line in lines
            ):
                self._delete("salesOrders", order_number)
            else:
                order["lastModifiedDateTime"] = _now_text()
            return number

    def delete_order(self, order_number: str) -> None:
        """A user deletes an open sales order (how an order is cancelled in Business Central:
        nothing of it was posted)."""
        with self.lock:
            self._delete("salesOrders", order_number)

    def invoice_without_shipment(
        self, order_number: str, *, posting_date: date | None = None
    ) -> str:
        """Invoice all of an order directly, no shipment posted (services, or lines posted
        to an account), and delete it from `salesOrders` as Business Central does once it is
        fully invoiced. Returns the invoice's number."""
        with self.lock:
            order = self.tables["salesOrders"].rows[order_number]
            for line in order["_lines"]:
                line["shippedQuantity"] = line["quantity"]
            try:
                return self.post_invoice(order_number, posting_date=posting_date)
            finally:
                for line in order["_lines"]:
                    line["shippedQuantity"] = 0

    def post_credit_memo(
        self,
        invoice_number: str,
        amount: float | None = None,
        *,
        status: str = "Open",
        posting_date: date | None = None,
        name_invoice_by: str = "both",
    ) -> str:
        """A sales credit memo of `amount` including tax (by default the invoice's whole
        total) naming an invoice: by `invoiceId`, `invoiceNumber` or `both` (the other left
        empty, as Business Central leaves what the user did not apply). `status` "Draft" is
        an unposted one. Returns its number."""
        with self.lock:
            invoice = self.tables["salesInvoices"].rows[invoice_number]
            total = invoice["totalAmountIncludingTax"] if amount is None else _money(amount)
            tax_share = invoice["totalTaxAmount"] / max(invoice["totalAmountIncludingTax"], 0.01)
            tax = _money(total * tax_share)
            number = self._next_number("salesCreditMemos", "CM")
            day = (posting_date or date.today()).isoformat()
            memo = {
                name: invoice[name]
                for name in PROPERTIES["salesCreditMemos"]
                if name in invoice and name in PROPERTIES["salesInvoices"]
            }
            memo.update(
                {
                    "id": self._new_id(),
                    "number": number,
                    "externalDocumentNumber": "",
                    "creditMemoDate": day,
                    "postingDate": day,
                    "dueDate": day,
                    "discountAmount": 0,
                    "totalAmountExcludingTax": _money(total - tax),
                    "totalTaxAmount": tax,
                    "totalAmountIncludingTax": total,
                    "status": status,
                    "lastModifiedDateTime": _now_text(),
                    "invoiceId": invoice["id"] if name_invoice_by != "number" else _ZERO_GUID,
                    "invoiceNumber": invoice_number if name_invoice_by != "id" else "",
                    "customerReturnReasonId": _ZERO_GUID,
                }
            )
            self._put("salesCreditMemos", number, memo)
            return number

    def ship_and_invoice(self, order_number: str) -> None:
        """The `shipAndInvoice` bound action: ship all that is left, invoice it all."""
        with self.lock:
            order = self.tables["salesOrders"].rows[order_number]
            if any(line["shippedQuantity"] < line["quantity"] for line in order["_lines"]):
                self.post_shipment(order_number)
            self.post_invoice(order_number)

    # --- data: plumbing ---------------------------------------------------------------------

    def _order_line(self, order: Json, index: int, spec: Mapping[str, Any]) -> Json:
        comment = spec.get("lineType") == "Comment"
        return {
            "id": self._new_id(),
            "documentId": order["id"],
            "sequence": 10000 * index,
            "itemId": _ZERO_GUID if comment else self._new_id(),
            "accountId": _ZERO_GUID,
            "lineType": spec.get("lineType", "Item"),
            "lineObjectNumber": spec.get("lineObjectNumber", ""),
            "description": spec.get("description", ""),
            "unitOfMeasureId": _ZERO_GUID,
            "unitOfMeasureCode": "" if comment else "PCS",
            "quantity": spec.get("quantity", 0),
            "unitPrice": spec.get("unitPrice", 0),
            "discountAmount": 0,
            "discountPercent": 0,
            "discountAppliedBeforeTax": False,
            "taxCode": "" if comment else "VAT21",
            "taxPercent": spec.get("taxPercent", 0),
            "shipmentDate": order["orderDate"],
            "shippedQuantity": 0,
            "invoicedQuantity": 0,
            "invoiceQuantity": 0,
            "shipQuantity": spec.get("quantity", 0),
            "itemVariantId": _ZERO_GUID,
        }

    def _invoice_line(self, invoice: Json, line: Json, quantity: float) -> Json:
        copied = {key: line[key] for key in PROPERTIES["salesInvoiceLines"] if key in line}
        return {**copied, "id": self._new_id(), "documentId": invoice["id"], "quantity": quantity}

    def _method_code(self, method_id: str) -> str:
        for method in self.tables["shipmentMethods"].rows.values():
            if method["id"] == method_id:
                return str(method["code"])
        return ""

    def _next_number(self, entity_set: str, prefix: str) -> str:
        self._numbers[entity_set] += 1
        return f"{prefix}-{self._numbers[entity_set]}"

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _put(self, entity_set: str, key: str, row: Json) -> None:
        with self.lock:
            self.tables[entity_set].put(key, row)
            self._by_id[entity_set][row["id"]] = row

    def _delete(self, entity_set: str, key: str) -> None:
        row = self.tables[entity_set].rows.get(key)
        if row is not None:
            self.tables[entity_set].delete(key)
            self._by_id[entity_set].pop(row["id"], None)

    # --- the identity platform ---------------------------------------------------------------

    def issue_token(self, tenant: str, form: Mapping[str, str]) -> Json:
        if tenant != self.tenant:
            raise TokenRefusal(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant"
                " ID and are signing into the correct cloud.",
            )
        if form.get("grant_type") != "client_credentials":
            raise TokenRefusal(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        if form.get("scope") != SCOPE:
            raise TokenRefusal(
                400,
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid:"
                f" {form.get('scope')!r}.",
            )
        if form.get("client_id") != self.client_id:
            raise TokenRefusal(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the"
                f" directory '{tenant}'.",
            )
        secret = form.get("client_secret", "")
        with self.lock:
            self.secrets_seen.append(secret)
        if not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
            raise TokenRefusal(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is"
                f" the client secret value, not the client secret ID, for a secret added to app"
                f" '{self.client_id}'.",
            )
        token = secrets.token_urlsafe(32)
        with self.lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
            self.tokens_issued += 1
        lifetime = self.token_lifetime
        expires_in = int(lifetime) if float(lifetime).is_integer() else lifetime
        return {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": token,
        }

    def _authorize(self, authorization: str | None, arrived: float) -> None:
        """A token is judged as the request arrived (not after the simulated latency)."""
        scheme, _, token = (authorization or "").partition(" ")
        with self.lock:
            expiry = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= arrived or not self.app_registered:
            raise ODataError(
                401,
                "Authentication_InvalidCredentials",
                f"The server has rejected the client credentials.  CorrelationId:  {uuid.uuid4()}.",
                {
                    "WWW-Authenticate": (
                        f'Bearer authorization_uri="https://login.microsoftonline.com/'
                        f'{self.tenant}/oauth2/authorize", error="invalid_token"'
                    )
                },
            )

    # --- the API -----------------------------------------------------------------------------

    def answer_get(
        self,
        path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        host: str,
        arrived: float,
    ) -> tuple[int, Any, dict[str, str]]:
        self._authorize(headers.get("authorization"), arrived)
        company_id, entity_set, key, tail = self._route(path)
        route = self._api_route(path)
        if route != STANDARD_ROUTE:
            return self._custom_get(
                route, company_id, entity_set, key, tail, path, query, headers, host
            )
        if company_id is None:
            return 200, self._companies(query), {}
        if entity_set is None:
            return 200, {"@odata.context": "$metadata#companies/$entity", **self.company}, {}
        if key is not None or entity_set not in self.tables:
            raise ODataError(
                404, "BadRequest_NotFound", f"Resource not found for the segment '{entity_set}'."
            )
        self._check_permission(entity_set)
        with self.lock:
            if tail == "$count":
                matches = _compile_filter(query.get("$filter"), entity_set)
                count = sum(1 for row in self.tables[entity_set].after(None) if matches(row))
                return 200, str(count), {"Content-Type": "text/plain"}
            if tail is not None:
                raise ODataError(
                    404, "BadRequest_NotFound", f"Resource not found for the segment '{tail}'."
                )
            prefer = _max_page_size(headers.get("prefer", ""))
            return 200, self._page(entity_set, path, query, prefer, host), _applied(prefer)

    def answer_post(
        self, path: str, headers: Mapping[str, str], arrived: float
    ) -> tuple[int, Any, dict[str, str]]:
        self._authorize(headers.get("authorization"), arrived)
        _, entity_set, key, tail = self._route(path)
        if entity_set != "salesOrders" or key is None or tail != "Microsoft.NAV.shipAndInvoice":
            raise ODataError(
                405, "BadRequest_MethodNotAllowed", "'POST' requests are not allowed here."
            )
        with self.lock:
            order = self._by_id["salesOrders"].get(key.strip("'").lower())
            if order is None:
                raise ODataError(
                    404, "BadRequest_NotFound", f"The sales order {key} does not exist."
                )
            self.ship_and_invoice(order["number"])
        return 204, None, {}

    @staticmethod
    def _api_route(path: str) -> str:
        api = _API_PATH.match(path)
        return STANDARD_ROUTE if api is None else api["route"]

    def _custom_get(
        self,
        route: str,
        company_id: str | None,
        entity_set: str | None,
        key: str | None,
        tail: str | None,
        path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        host: str,
    ) -> tuple[int, Any, dict[str, str]]:
        """A custom API page: only the entity sets published on that route, no $expand."""
        with self.lock:
            page = self.custom_pages.get(route, {}).get(entity_set or "")
        if company_id is None or entity_set is None or page is None or key or tail:
            raise ODataError(
                404, "BadRequest_NotFound", f"No API page is published at api/{route}."
            )
        if query.get("$expand"):
            raise _bad_request("The custom API page has no navigation properties.")
        self._check_permission(entity_set)
        with self.lock:
            prefer = _max_page_size(headers.get("prefer", ""))
            body = self._page(entity_set, path, query, prefer, host, custom=page)
            return 200, body, _applied(prefer)

    def _route(self, path: str) -> tuple[str | None, str | None, str | None, str | None]:
        api = _API_PATH.match(path)
        if api is None or api["tenant"] != self.tenant or api["environment"] != self.environment:
            raise ODataError(
                404,
                "BadRequest_NotFound",
                "The environment does not exist or you do not have access to it.",
            )
        target = _COMPANY_PATH.match(unquote(api["rest"] or ""))
        if target is None:
            raise ODataError(404, "BadRequest_NotFound", "The request URI is not valid.")
        company = target["company"]
        if company is None:
            return None, None, None, None
        if company.lower() != self.company["id"]:
            raise ODataError(404, "BadRequest_NotFound", f"The company '{company}' does not exist.")
        return company, target["set"], target["key"], target["tail"]

    def _check_permission(self, entity_set: str) -> None:
        if entity_set in self.forbidden:
            table = {"salesOrders": "Sales Header", "customers": "Customer"}.get(
                entity_set, entity_set
            )
            raise ODataError(
                403,
                "Internal_ServerError",
                f"Sorry, the current permissions prevented the action. (TableData {table} Read:"
                f" Base Application)  CorrelationId:  {uuid.uuid4()}.",
            )

    def _companies(self, query: dict[str, str]) -> Json:
        select = _parse_select(query.get("$select"), "companies")
        return {
            "@odata.context": "$metadata#companies",
            "value": [_shape(self.company, select or PROPERTIES["companies"])],
        }

    def _page(
        self,
        entity_set: str,
        path: str,
        query: dict[str, str],
        prefer: int | None,
        host: str,
        custom: tuple[tuple[str, ...], str] | None = None,
    ) -> Json:
        matches = _compile_filter(query.get("$filter"), entity_set)
        if custom is None:
            select = _parse_select(query.get("$select"), entity_set)
            expand = _parse_expand(query.get("$expand"), entity_set)
        else:
            fields, _ = custom
            select = [f.strip() for f in (query.get("$select") or ",".join(fields)).split(",")]
            for name in select:
                if name not in fields:
                    raise _unknown_property(name, entity_set)
            expand = {}
        top = _parse_top(query.get("$top"))
        after, sent = _parse_skiptoken(query.get("$skiptoken"))
        size = min(prefer or self.max_page_size, self.max_page_size)
        if top is not None:
            size = min(size, top - sent)
        rows: list[Json] = []
        more = False
        for row in self.tables[entity_set].after(after):
            if not matches(row):
                continue
            if len(rows) >= size:
                more = True
                break
            rows.append(row)
        body: Json = {
            "@odata.context": f"$metadata#companies({self.company['id']})/{entity_set}",
            "value": [
                self._render(entity_set, row, select, expand)
                if custom is None
                else {f: row.get("_tracking", "") if f == custom[1] else row.get(f) for f in select}
                for row in rows
            ],
        }
        if more and rows and (top is None or sent + len(rows) < top):
            token = f"{_key_of(entity_set, rows[-1])}|{sent + len(rows)}"
            kept = {name: value for name, value in query.items() if name != "$skiptoken"}
            if self.looping_next_link and "$skiptoken" in query:
                token = query["$skiptoken"]  # a broken server: page 2 links to page 2 again
            link = urlencode({**kept, "$skiptoken": token}, quote_via=quote, safe="$,()':")
            body["@odata.nextLink"] = f"http://{host}{path}?{link}"
        return body

    def _render(
        self,
        entity_set: str,
        row: Json,
        select: Sequence[str] | None,
        expand: Mapping[str, Sequence[str] | None],
    ) -> Json:
        entity = _shape(row, select or PROPERTIES[entity_set])
        for name, nested_select in expand.items():
            target, many = NAVIGATION[entity_set][name]
            if many:
                fields = nested_select or PROPERTIES[target]
                entity[name] = [_shape(line, fields) for line in row.get("_lines", ())]
            else:
                related = self._related(entity_set, name, row)
                fields = nested_select or PROPERTIES[target]
                entity[name] = None if related is None else _shape(related, fields)
        return entity

    def _related(self, entity_set: str, name: str, row: Json) -> Json | None:
        if name == "customer":
            return self.tables["customers"].rows.get(row.get("customerNumber", ""))
        return self._by_id["shipmentMethods"].get(row.get("shipmentMethodId", ""))

    # --- faults ------------------------------------------------------------------------------

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            fault = self.fault_plan.take(method, path)
            if fault is not None:
                return fault
            if self.fail_rate and self._rng.random() < self.fail_rate:
                kind = self._rng.choice(("503", "429", "drop"))
                if kind == "drop":
                    return Fault(drop=True)
                if kind == "429":
                    return too_many_requests(1)
                return Fault(status=503, body=_server_error(503))
        return None

    def record(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    # --- HTTP ------------------------------------------------------------------------------

    def reply_to(self, request: Request) -> Reply | None:
        query = request.query
        headers = {name.lower(): value for name, value in request.headers.items()}
        exchange = Exchange(request.method, request.path, query, headers.get("prefer", ""), 0)
        if self.latency:
            time.sleep(self.latency)
        fault = self._fault_for(request.method, request.path)
        reply = self.faulted(fault, lambda: self._answer(request, query, headers))
        exchange.status = 0 if reply is None else reply.status
        self.record(exchange)
        return reply

    def _answer(self, request: Request, query: dict[str, str], headers: dict[str, str]) -> Reply:
        path, arrived = request.path, request.arrived
        try:
            if request.method == "POST" and path.endswith("/oauth2/v2.0/token"):
                tenant = path.split("/")[1]
                form = {k: v[0] for k, v in parse_qs(request.raw.decode()).items()}
                return Reply(200, self.issue_token(tenant, form), {"Cache-Control": "no-store"})
            if request.method == "GET":
                host = request.headers.get("Host", "")
                return Reply(*self.answer_get(path, query, headers, host, arrived))
            return Reply(*self.answer_post(path, headers, arrived))
        except ODataError as error:
            return Reply(error.status, error.body, error.headers)
        except TokenRefusal as refusal:
            return Reply(refusal.status, refusal.body)


def too_many_requests(retry_after: float) -> Fault:
    """Business Central's throttling answer."""
    return Fault(
        status=429,
        headers={"Retry-After": f"{retry_after:g}"},
        body={
            "error": {
                "code": "Application_TooManyRequests",
                "message": "Too many requests reached. Actual (6001). Maximum (6000).",
            }
        },
    )


def _server_error(status: int) -> Json:
    return {
        "error": {
            "code": "Internal_ServerError",
            "message": f"The service is temporarily unavailable (HTTP {status}).",
        }
    }


# --- entities ---------------------------------------------------------------------------------


def _customer_address(customer: Json) -> dict[str, str]:
    return {
        "line1": customer["addressLine1"],
        "line2": customer["addressLine2"],
        "city": customer["city"],
        "region": customer["state"],
        "postcode": customer["postalCode"],
        "country": customer["country"],
    }


def _party(prefix: str, address: Mapping[str, str]) -> dict[str, str]:
    return {
        f"{prefix}AddressLine1": address.get("line1", ""),
        f"{prefix}AddressLine2": address.get("line2", ""),
        f"{prefix}City": address.get("city", ""),
        f"{prefix}Country": address.get("country", ""),
        f"{prefix}State": address.get("region", ""),
        f"{prefix}PostCode": address.get("postcode", ""),
    }


def _set_totals(header: Json, lines: list[Json], discount: float) -> None:
    """Line amounts and the header's totals, the invoice discount spread over the lines."""
    including = header["pricesIncludeTax"]
    gross = Decimal(0)
    for line in lines:
        amount = Decimal(str(line["quantity"])) * Decimal(str(line["unitPrice"]))
        rate = Decimal(str(line["taxPercent"])) / 100
        line["_gross"] = amount / (1 + rate) if including else amount
        gross += line["_gross"]
    excluding = tax = Decimal(0)
    for line in lines:
        rate = Decimal(str(line["taxPercent"])) / 100
        allocation = Decimal(str(discount)) * line["_gross"] / gross if gross else Decimal(0)
        net = line.pop("_gross") - allocation
        line_tax = net * rate
        line["amountExcludingTax"] = _money(net + allocation)
        line["invoiceDiscountAllocation"] = _money(allocation)
        line["netAmount"] = _money(net)
        line["netTaxAmount"] = line["totalTaxAmount"] = _money(line_tax)
        line["amountIncludingTax"] = _money((net + allocation) * (1 + rate))
        line["netAmountIncludingTax"] = _money(net + line_tax)
        excluding += net
        tax += line_tax
    header["discountAmount"] = discount
    header["totalAmountExcludingTax"] = _money(excluding)
    header["totalTaxAmount"] = _money(tax)
    header["totalAmountIncludingTax"] = _money(
        Decimal(str(_money(excluding))) + Decimal(str(_money(tax)))
    )


def _posted_header(order: Json, entity_set: str) -> Json:
    """The order's header fields that a posted document of `entity_set` carries."""
    header = {key: order[key] for key in PROPERTIES[entity_set] if key in order}
    header["lastModifiedDateTime"] = _now_text()
    return header


def _shape(row: Json, fields: Sequence[str]) -> Json:
    return {field: row.get(field) for field in fields}


def _key_of(entity_set: str, row: Json) -> str:
    return str(row["code"] if entity_set == "shipmentMethods" else row["number"])


# --- OData query options ----------------------------------------------------------------------


def _bad_request(message: str) -> ODataError:
    return ODataError(400, "BadRequest", message)


def _unknown_property(name: str, entity_set: str) -> ODataError:
    return _bad_request(
        f"Could not find a property named '{name}' on type"
        f" 'Microsoft.NAV.{ENTITY_TYPES[entity_set]}'."
    )


def _parse_select(text: str | None, entity_set: str) -> list[str] | None:
    if not text:
        return None
    fields = [field.strip() for field in text.split(",") if field.strip()]
    for field in fields:
        if field not in PROPERTIES[entity_set]:
            raise _unknown_property(field, entity_set)
    return fields


def _parse_expand(text: str | None, entity_set: str) -> dict[str, list[str] | None]:
    expand: dict[str, list[str] | None] = {}
    for item in _split_top_level(text or ""):
        name, _, options = item.partition("(")
        name = name.strip()
        if name not in NAVIGATION.get(entity_set, {}):
            raise _unknown_property(name, entity_set)
        target = NAVIGATION[entity_set][name][0]
        select: list[str] | None = None
        for option in options.rstrip(")").split(";") if options else ():
            key, _, value = option.partition("=")
            if key.strip() != "$select":
                raise _bad_request(f"The query option '{key.strip()}' is not supported in $expand.")
            select = _parse_select(value, target)
        expand[name] = select
    return expand


def _split_top_level(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    items.append(text[start:])
    return [item for item in items if item.strip()]


def _parse_top(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise _bad_request(f"Invalid value '{text}' for $top query option found.")
    return int(text)


def _parse_skiptoken(text: str | None) -> tuple[str | None, int]:
    if not text:
        return None, 0
    key, _, sent = text.rpartition("|")
    return key, int(sent) if sent.isdigit() else 0


def _max_page_size(prefer: str) -> int | None:
    found = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", prefer)
    return int(found.group(1)) if found and int(found.group(1)) > 0 else None


def _applied(prefer: int | None) -> dict[str, str]:
    return {} if prefer is None else {"Preference-Applied": f"odata.maxpagesize={prefer}"}


_FILTER_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\()|(?P<close>\))
      | (?P<string>'(?:[^']|'')*')
      | (?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
      | (?P<date>\d{4}-\d{2}-\d{2})
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}
Predicate = Callable[[Json], bool]


def _compile_filter(text: str | None, entity_set: str) -> Predicate:
    if not text or not text.strip():
        return lambda row: True
    tokens = _tokenize(text)
    predicate, position = _or_expression(tokens, 0, entity_set)
    if position != len(tokens):
        raise _bad_request(f"Syntax error at position {position} in '{text}'.")
    return predicate


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        found = _FILTER_TOKEN.match(text, position)
        if found is None or found.lastgroup is None:
            raise _bad_request(f"Syntax error at position {position} in '{text}'.")
        tokens.append((found.lastgroup, found.group(found.lastgroup)))
        position = found.end()
    return tokens


def _or_expression(
    tokens: list[tuple[str, str]], position: int, entity_set: str
) -> tuple[Predicate, int]:
    parts = []
    part, position = _and_expression(tokens, position, entity_set)
    parts.append(part)
    while position < len(tokens) and tokens[position] == ("word", "or"):
        part, position = _and_expression(tokens, position + 1, entity_set)
        parts.append(part)
    if len(parts) == 1:
        return parts[0], position
    return (lambda row: any(p(row) for p in parts)), position


def _and_expression(
    tokens: list[tuple[str, str]], position: int, entity_set: str
) -> tuple[Predicate, int]:
    parts = []
    part, position = _primary(tokens, position, entity_set)
    parts.append(part)
    while position < len(tokens) and tokens[position] == ("word", "and"):
        part, position = _primary(tokens, position + 1, entity_set)
        parts.append(part)
    if len(parts) == 1:
        return parts[0], position
    return (lambda row: all(p(row) for p in parts)), position


def _primary(
    tokens: list[tuple[str, str]], position: int, entity_set: str
) -> tuple[Predicate, int]:
    if position >= len(tokens):
        raise _bad_request("Expression expected at the end of $filter.")
    if tokens[position][0] == "open":
        inner, position = _or_expression(tokens, position + 1, entity_set)
        if position >= len(tokens) or tokens[position][0] != "close":
            raise _bad_request("')' expected in $filter.")
        return inner, position + 1
    if position + 3 > len(tokens):
        raise _bad_request("A comparison is incomplete in $filter.")
    (kind, field), (_, operator), (literal_kind, literal) = tokens[position : position + 3]
    if kind != "word" or operator not in _COMPARISONS:
        raise _bad_request(f"Syntax error near '{field}' in $filter.")
    if field not in PROPERTIES[entity_set]:
        raise _unknown_property(field, entity_set)
    value, convert = _literal(literal_kind, literal)
    compare = _COMPARISONS[operator]
    return (lambda row: compare(convert(row.get(field)), value)), position + 3


def _literal(kind: str, text: str) -> tuple[Any, Callable[[Any], Any]]:
    """(the literal's value, how to turn a property's value into something comparable)."""
    if kind == "string":
        return text[1:-1].replace("''", "'"), lambda v: v
    if kind == "guid":
        return text.lower(), lambda v: str(v).lower() if v is not None else None
    if kind == "datetime":
        return _datetime(text), lambda v: _datetime(v) if isinstance(v, str) else None
    if kind == "date":
        return date.fromisoformat(text), lambda v: _date(v)
    if kind == "number":
        return float(text), lambda v: float(v) if isinstance(v, (int, float)) else None
    if kind == "word" and text in ("true", "false"):
        return text == "true", lambda v: v
    if kind == "word" and text == "null":
        return None, lambda v: v
    raise _bad_request(f"'{text}' is not a literal the fake understands in $filter.")


def _datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


# --- reference data for `generate` ------------------------------------------------------------

_FIRST_NAMES = ("Jane", "John", "Sanne", "Lukas", "Emma", "Noah", "Mia", "Oliver", "Lotte")
_LAST_NAMES = ("Doe", "de Vries", "Müller", "Smith", "Janssens", "Martin", "Bakker", "Jones")
_CITIES = (
    ("Utrecht", "3511 AB", "NL"),
    ("Berlin", "10115", "DE"),
    ("Gent", "9000", "BE"),
    ("London", "SW1A 1AA", "GB"),
    ("Lyon", "69001", "FR"),
)
_STREETS = ("Main St", "Kerkstraat", "Hauptstraße", "Rue Haute", "High Street")
_ADJECTIVES = ("Classic", "Recycled", "Premium", "Urban", "Trail")
_PRODUCTS = ("Hat", "Scarf", "Hoodie", "Beanie", "Backpack", "Mug", "Sneakers")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A loopback Business Central for order-export.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--tenant", default="contoso")
    parser.add_argument("--environment", default="production")
    parser.add_argument("--client-id", default="11111111-2222-3333-4444-555555555555")
    parser.add_argument("--client-secret", default="demo-secret")
    parser.add_argument("--orders", type=int, default=500, help="sales orders to generate")
    parser.add_argument("--days", type=int, default=45, help="spread over this many days")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--activity",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="post shipments and invoices for some of the older orders (default: on)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument("--token-lifetime", type=float, default=3599.0, help="seconds")
    parser.add_argument("--max-page-size", type=int, default=DEFAULT_MAX_PAGE_SIZE)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests faulted")
    args = parser.parse_args(argv)
    fake = BusinessCentralFake(
        tenant=args.tenant,
        environment=args.environment,
        client_id=args.client_id,
        client_secret=args.client_secret,
        host=args.host,
        port=args.port,
        token_lifetime=args.token_lifetime,
        latency=args.latency_ms / 1000,
        max_page_size=args.max_page_size,
        fail_rate=args.fail_rate,
        seed=args.seed,
    )
    fake.generate(args.orders, args.days, seed=args.seed, activity=args.activity)
    with fake:
        lines = [f'{key} = "{value}"' for key, value in fake.settings().items()]
        print(
            '# settings.toml\n[erp]\nsource = "business_central"\n\n'
            "[erp.business_central]\n" + "\n".join(lines) + "\n",
            flush=True,
        )
        print(
            f"# and in the environment:\nexport BC_CLIENT_SECRET='{args.client_secret}'", flush=True
        )
        print(
            f"Fake Business Central: {len(fake.tables['salesOrders'])} open sales orders,"
            f" {len(fake.tables['salesShipments'])} posted shipments,"
            f" {len(fake.tables['salesInvoices'])} posted invoices; Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
