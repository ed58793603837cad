"""Business Central API v2.0 entities -> the order document (interfaces.md §3). No I/O here.

Where each field comes from (a `salesOrder` expanded with `salesOrderLines` and `customer`):

- `order_id`: the order's `number` (never its GUID); `order_date`: `orderDate` at midnight in
  the server's time zone (Business Central keeps no order time).
- `customer`: `customerNumber`; e-mail: the order's own `email` (its Sell-to E-Mail), else the
  expanded customer's `email`; names: `customerName` split at its first space for a person
  (`Jane Doe` -> `Jane` / `Doe`), whole in `last_name` for a customer of type `Company` or a
  one-word name.
- `currency`: `currencyCode` (API v2.0 already turns the local currency's blank into its code).
- `lines`: every line that sells something (not a `Comment` line, quantity not 0), in
  `sequence` order; `line_no` is the line's `sequence` (10000, 20000...: stable when lines are
  inserted), `sku` its `lineObjectNumber` (an item, or a G/L account, resource or charge);
  `unit_price` / `unit_price_incl_tax` from `unitPrice` and `taxPercent` (whichever of the two
  `pricesIncludeTax` says `unitPrice` is, the other is derived and rounded to 2 decimals).
- `total` = `totalAmountIncludingTax`, `tax` = `totalTaxAmount`, `discount` = `discountAmount`
  (the invoice discount; line discounts are already in the line amounts), `subtotal` =
  `totalAmountExcludingTax` + `discountAmount`, so subtotal - discount + tax = total.
- `billing_address`: the bill-to address (the sell-to address when bill-to is blank);
  `shipping_address`: the ship-to address (likewise).
- `shipping_method`: the display name of the order's shipment method (`shipmentMethods`).
- `shipping_status`: from shipped against ordered quantities, line by line: none shipped ->
  `not_shipped`, some -> `partially_shipped`, all -> `shipped`. For an open order the line's
  `shippedQuantity` is that figure (Business Central adds each posted shipment line to it);
  for an order that left `salesOrders` it is summed from its posted `salesShipmentLines`.

Defaults for what Business Central does not have: `payment_method` "" (API v2.0 exposes payment
terms, not a payment method), `payment_status` "pending" (a sales order carries no payment
state; the webstore's payment-status webhook does), `shipping_cost` 0.0 (no shipping cost line;
a shipping charge booked as an order line is exported as that line), `tracking_number` and
`tracking_url` "" (API v2.0 shipments carry no tracking number) unless an API page of the
administrator's gives posted shipments one (`shipment_tracking_field`, see `with_tracking`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any
from urllib.parse import quote

from order_export_tui.orders import OrderDocument

Entity = Mapping[str, Any]

NOT_SHIPPED = "not_shipped"
PARTIALLY_SHIPPED = "partially_shipped"
SHIPPED = "shipped"
DEFAULT_PAYMENT_STATUS = "pending"
DEFAULT_PAYMENT_METHOD = ""
DEFAULT_SHIPPING_COST = 0.0

_ADDRESS_SUFFIXES = {
    "line1": "AddressLine1",
    "line2": "AddressLine2",
    "city": "City",
    "region": "State",
    "postcode": "PostCode",
    "country": "Country",
}
_ADDRESS_FIELDS = tuple(
    f"{prefix}{suffix}"
    for prefix in ("sellTo", "billTo", "shipTo")
    for suffix in _ADDRESS_SUFFIXES.values()
)
_HEADER_FIELDS = (
    "number",
    "customerNumber",
    "customerName",
    "email",
    "currencyCode",
    "pricesIncludeTax",
    "shipmentMethodId",
    "discountAmount",
    "totalAmountExcludingTax",
    "totalTaxAmount",
    "totalAmountIncludingTax",
    *_ADDRESS_FIELDS,
)
_DOCUMENT_LINE_FIELDS = (
    "sequence",
    "lineType",
    "lineObjectNumber",
    "description",
    "quantity",
    "unitPrice",
    "taxPercent",
)

# What is asked of Business Central ($select), per resource.
ORDER_FIELDS = (*_HEADER_FIELDS, "orderDate")
ORDER_LINE_FIELDS = (*_DOCUMENT_LINE_FIELDS, "shippedQuantity")
INVOICE_FIELDS = (*_HEADER_FIELDS, "orderNumber", "postingDate")
INVOICE_LINE_FIELDS = _DOCUMENT_LINE_FIELDS
CUSTOMER_FIELDS = ("number", "email", "type")
SHIPMENT_FIELDS = ("number", "orderNumber", "postingDate", "lastModifiedDateTime")
SHIPMENT_LINE_FIELDS = ("sequence", "quantity")
SHIPMENT_METHOD_FIELDS = ("id", "code", "displayName")


def order_document(order: Entity, shipment_methods: Mapping[str, str]) -> OrderDocument:
    """The document of an open sales order (expanded with `salesOrderLines` and `customer`)."""
    lines = _entities(order.get("salesOrderLines"))
    doc = _document(
        order,
        order_id=_text(order.get("number")),
        order_date=local_midnight(_text(order.get("orderDate"))),
        lines=lines,
        shipment_methods=shipment_methods,
    )
    doc["shipping_status"] = shipping_status(
        (line.get("quantity"), line.get("shippedQuantity")) for line in lines if _sells(line)
    )
    return doc


def invoiced_order_document(
    order_number: str,
    invoices: Sequence[Entity],
    order_day: str,
    shipped: Mapping[int, float],
    shipment_methods: Mapping[str, str],
) -> OrderDocument:
    """An order known only from its posted invoices (it left `salesOrders` before it was ever
    read): its lines and amounts are those invoiced, `order_day` stands in for its order date,
    and `shipped` (sequence -> quantity from its posted shipments) gives its shipping status."""
    merged = merge_invoices(invoices)
    lines = _entities(merged.get("salesInvoiceLines"))
    doc = _document(
        merged,
        order_id=order_number,
        order_date=local_midnight(order_day),
        lines=lines,
        shipment_methods=shipment_methods,
    )
    return with_shipped_quantities(doc, shipped)


def with_tracking(doc: OrderDocument, tracking_number: str, url_template: str) -> OrderDocument:
    """`doc` with its latest shipment's tracking number and the URL `url_template` makes of
    it (the number URL-quoted where `{tracking_number}` stands); unchanged without a number."""
    if not tracking_number:
        return doc
    url = (
        url_template.replace("{tracking_number}", quote(tracking_number, safe=""))
        if url_template
        else ""
    )
    return {**doc, "tracking_number": tracking_number, "tracking_url": url}


def with_shipped_quantities(doc: OrderDocument, shipped: Mapping[int, float]) -> OrderDocument:
    """`doc` with the shipping status that `shipped` (sequence -> quantity) gives its lines."""
    lines = doc.get("lines")
    ordered = lines if isinstance(lines, list) else []
    status = shipping_status(
        (line.get("quantity"), shipped.get(line.get("line_no"), 0))
        for line in ordered
        if isinstance(line, dict)
    )
    return {**doc, "shipping_status": status}


def shipping_status(quantities: Iterable[tuple[Any, Any]]) -> str:
    """From (ordered, shipped) quantities per line."""
    any_line = some_shipped = False
    all_shipped = True
    for ordered, shipped in quantities:
        ordered_qty, shipped_qty = _number(ordered) or 0.0, _number(shipped) or 0.0
        if ordered_qty <= 0:
            continue
        any_line = True
        some_shipped = some_shipped or shipped_qty > 0
        all_shipped = all_shipped and shipped_qty >= ordered_qty
    if any_line and all_shipped:
        return SHIPPED
    return PARTIALLY_SHIPPED if some_shipped else NOT_SHIPPED


def merge_invoices(invoices: Sequence[Entity]) -> dict[str, Any]:
    """One order's invoices as one document: the first one's header, the amounts summed, the
    lines of all (quantities summed per sequence)."""
    first = dict(invoices[0])
    for field in ("discountAmount", "totalAmountExcludingTax", "totalTaxAmount"):
        first[field] = _sum(invoice.get(field) for invoice in invoices)
    first["totalAmountIncludingTax"] = _sum(
        invoice.get("totalAmountIncludingTax") for invoice in invoices
    )
    by_sequence: dict[Any, dict[str, Any]] = {}
    for invoice in invoices:
        for line in _entities(invoice.get("salesInvoiceLines")):
            key = line.get("sequence")
            if key in by_sequence:
                kept = by_sequence[key]
                kept["quantity"] = _sum((kept.get("quantity"), line.get("quantity")))
            else:
                by_sequence[key] = dict(line)
    first["salesInvoiceLines"] = list(by_sequence.values())
    return first


def local_midnight(day: str) -> str:
    """'2026-11-27' -> midnight of that day in the server's time zone, ISO 8601 with offset;
    "" for what is not a date (Business Central's blank date 0001-01-01 among them), which
    makes the document invalid, with that reason."""
    try:
        moment = datetime.combine(date.fromisoformat(day), time.min).astimezone()
    except (ValueError, OverflowError, OSError):
        return ""
    if moment.year < 2:
        return ""
    return moment.isoformat()


def split_name(name: str, customer_type: str | None) -> tuple[str, str]:
    """(first, last) from Business Central's one name field."""
    name = " ".join(name.split())
    if customer_type == "Company" or " " not in name:
        return "", name
    first, last = name.split(" ", 1)
    return first, last


# --------------------------------------------------------------------------------------------


def _document(
    header: Entity,
    *,
    order_id: str,
    order_date: str,
    lines: list[Entity],
    shipment_methods: Mapping[str, str],
) -> OrderDocument:
    customer = header.get("customer")
    customer = customer if isinstance(customer, Mapping) else {}
    first_name, last_name = split_name(_text(header.get("customerName")), customer.get("type"))
    prices_include_tax = header.get("pricesIncludeTax") is True
    discount = _money(header.get("discountAmount"))
    return {
        "order_id": order_id,
        "order_date": order_date,
        "customer": {
            "id": _text(header.get("customerNumber")),
            "email": _text(header.get("email")).strip() or _text(customer.get("email")).strip(),
            "first_name": first_name,
            "last_name": last_name,
        },
        "currency": _text(header.get("currencyCode")),
        "lines": [
            _line(line, prices_include_tax) for line in sorted(lines, key=_sequence) if _sells(line)
        ],
        "subtotal": _add(header.get("totalAmountExcludingTax"), discount),
        "discount": discount,
        "shipping_cost": DEFAULT_SHIPPING_COST,
        "tax": _money(header.get("totalTaxAmount")),
        "total": _money(header.get("totalAmountIncludingTax")),
        "shipping_method": shipment_methods.get(_text(header.get("shipmentMethodId")), ""),
        "payment_method": DEFAULT_PAYMENT_METHOD,
        "billing_address": _address(header, "billTo"),
        "shipping_address": _address(header, "shipTo"),
        "shipping_status": NOT_SHIPPED,
        "payment_status": DEFAULT_PAYMENT_STATUS,
        "tracking_number": "",
        "tracking_url": "",
    }


def _line(line: Entity, prices_include_tax: bool) -> dict[str, Any]:
    unit_price = _money(line.get("unitPrice"))
    excluding, including = _prices(unit_price, line.get("taxPercent"), prices_include_tax)
    return {
        "line_no": line.get("sequence"),
        "sku": _text(line.get("lineObjectNumber")),
        "name": _text(line.get("description")),
        "quantity": _quantity(line.get("quantity")),
        "unit_price": excluding,
        "unit_price_incl_tax": including,
    }


def _prices(unit_price: Any, tax_percent: Any, prices_include_tax: bool) -> tuple[Any, Any]:
    """(excluding tax, including tax); a non-number stays as it is, for validation to name."""
    price, percent = _number(unit_price), _number(tax_percent) or 0.0
    if price is None:
        return unit_price, unit_price
    factor = 1 + percent / 100
    if prices_include_tax:
        return round(price / factor, 2), price
    return price, round(price * factor, 2)


def _sells(line: Entity) -> bool:
    return line.get("lineType") != "Comment" and _number(line.get("quantity")) != 0


def _sequence(line: Entity) -> int:
    sequence = line.get("sequence")
    return sequence if type(sequence) is int else 0


def _address(header: Entity, prefix: str) -> dict[str, str]:
    address = {key: _text(header.get(prefix + suffix)) for key, suffix in _ADDRESS_SUFFIXES.items()}
    if any(address.values()):
        return address
    return {key: _text(header.get("sellTo" + suffix)) for key, suffix in _ADDRESS_SUFFIXES.items()}


def _entities(value: Any) -> list[Entity]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if type(value) in (int, float):
        return float(value)
    return None


def _money(value: Any) -> Any:
    """Amounts as JSON floats (Business Central writes 10 and 10.5 alike); others unchanged."""
    number = _number(value)
    return value if number is None else number


def _quantity(value: Any) -> Any:
    """A whole quantity as an integer (platforms want whole item counts), else unchanged."""
    number = _number(value)
    if number is not None and number.is_integer():
        return int(number)
    return value


def _add(first: Any, second: Any) -> Any:
    a, b = _number(first), _number(second)
    if a is None or b is None:
        return first
    # Business Central amounts have at most a few decimals; rounding drops float noise only.
    return round(a + b, 6)


def _sum(values: Iterable[Any]) -> float:
    return round(sum(_number(value) or 0.0 for value in values), 6)
