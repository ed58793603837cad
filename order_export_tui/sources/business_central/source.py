"""The Microsoft Dynamics 365 Business Central source (API v2.0), `erp.source = "business_central"`.

A run reads, in this order:

1. `shipmentMethods` (one small request): shipment method id -> display name.
2. (Step 3 below, read first so that open orders carry their tracking numbers.)
   `salesOrders` with `orderDate ge <first day of the window>`, expanded with their
   `salesOrderLines` and `customer`, page by page: each page becomes one chunk of documents
   (see `business_central_mapping` for the mapping and its defaults). The customer's e-mail
   comes with its order, never one request per order.
3. `salesShipments` with their lines: the posted shipments, by modification time since the last
   run (the first run, or a window that grew, reads every one posted in the window); with
   `shipment_tracking_field` set, the same shipments' tracking numbers too, from the custom API
   page of `shipment_tracking_api` (an API page cannot be extended: the README has the AL).
   Each order then carries its latest shipment's tracking number, and the URL that
   `tracking_url_template` makes of it.
4. The in-window orders that have left `salesOrders` (Business Central deletes an order once
   it is fully shipped and invoiced) and have posted shipments: each one's last document
   again, with the shipping status its shipments give, so it turns `shipped` once and is
   re-checked like any other order afterwards. Orders that left before any run read them
   are rebuilt from their posted `salesInvoices`; API v2.0 gives posted documents no order
   date, so their first shipment's posting date stands in for it (for the window too: on a
   first run, an order placed just before the window and shipped inside it is exported).

Before the orders, the window's posted `salesCreditMemos` (one paged read, a few fields) and
the invoices they name: each order they credit is yielded `refunded` or `partially_refunded`
(`business_central_refunds`, interfaces.md §7). `invoiced(order_ids)` tells the engine which
orders that left `salesOrders` were invoiced, not cancelled.

Why a full window scan of `salesOrders` every run, and an incremental read of shipments:
- An order's `lastModifiedDateTime` does not move when what its document is made of changes
  elsewhere (the customer's e-mail, a shipment method's name); an incremental read would keep
  sending stale documents.
- An incremental read cannot see an order disappear, and a disappeared order is the one about
  to turn `shipped`.
- Orders that were skipped (invalid) must be read again by every run: they count against each
  run's skip budget, and runs limited to chosen orders re-try them.
- The engine compares each document's content hash with what the destination holds, so a
  re-read order that did not change costs nothing beyond its read.
- Posted shipments, on the other hand, are documents Business Central only ever adds to (at
  most a few header fields can be edited, which moves their `lastModifiedDateTime`): reading
  those modified since the newest one already read, less a margin (`SHIPMENTS_OVERLAP`) for
  clock skew and transactions committed late, loses nothing, and the ledger keeps the rest.
  The watermark is Business Central's own time, never this machine's.

What is remembered between runs lives in the ledger (`business_central_ledger`), a file next
to the state database. Memory stays flat in the number of orders: one page at a time, and the
ledger's queries walk it in chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson

from order_export_tui.orders import OrderDocument
from order_export_tui.settings import Settings
from order_export_tui.sources.business_central.client import (
    DEFAULT_PAGE_SIZE,
    BusinessCentralClient,
    BusinessCentralError,
    Connection,
)
from order_export_tui.sources.business_central.ledger import (
    Ledger,
    OrderRow,
    ShipmentRow,
    TrackingRow,
)
from order_export_tui.sources.business_central.mapping import (
    CUSTOMER_FIELDS,
    INVOICE_FIELDS,
    INVOICE_LINE_FIELDS,
    ORDER_FIELDS,
    ORDER_LINE_FIELDS,
    SHIPMENT_FIELDS,
    SHIPMENT_LINE_FIELDS,
    SHIPMENT_METHOD_FIELDS,
    invoiced_order_document,
    order_document,
    with_shipped_quantities,
    with_tracking,
)
from order_export_tui.sources.business_central.refunds import (
    CREDIT_MEMO_FIELDS,
    CREDITED_INVOICE_FIELDS,
    credited_invoices,
    refund_statuses,
)
from order_export_tui.state import local_anchor
from order_export_tui.transport.http import display_url
from order_export_tui.transport.retry import Retrier

__all__ = ["BusinessCentralError", "BusinessCentralSource", "first_order_day", "ledger_path"]

SHIPMENTS_OVERLAP = timedelta(minutes=10)
LEFT_ORDERS_CHUNK = 500
INVOICE_LOOKUP_BATCH = 20  # order numbers per salesInvoices request (keeps the URL short)
ORDER_LOOKUP_BATCH = 20  # order numbers per salesOrders / salesShipments lookup request
CREDIT_MEMO_LOOKUP_BATCH = 10  # invoices per salesCreditMemos lookup (two terms each)


def ledger_path(settings: Settings) -> Path:
    """`data/state.sqlite` -> `data/state.business-central.sqlite`."""
    state = local_anchor(settings)
    return state.with_name(f"{state.stem}.business-central.sqlite")


@dataclass(frozen=True, slots=True)
class Tracking:
    """Where posted shipments' tracking numbers come from, and the URL made of them."""

    field: str  # a salesShipments field an API extension adds; "" = none
    route: str = ""  # the custom API page's publisher/group/version; "" = the standard API
    url_template: str = ""  # with {tracking_number}; "" = no URL

    @property
    def source(self) -> str:
        return f"{self.route}|{self.field}"


def first_order_day(window_start: datetime) -> date:
    """The first order date inside the window: an order dated D is at local midnight of D."""
    day = window_start.astimezone().date()
    if datetime.combine(day, time.min).astimezone() < window_start:
        day += timedelta(days=1)
    return day


class BusinessCentralSource:
    """Reads one Business Central company's sales orders as order documents (`OrderSource`)."""

    name = "business_central"

    def __init__(
        self,
        client: BusinessCentralClient,
        ledger_file: Path,
        tracking: Tracking | None = None,
    ) -> None:
        self.client = client
        self.ledger_file = Path(ledger_file)
        self.tracking = tracking or Tracking("")
        self._ledger: Ledger | None = None
        self._shipments_read_for: str | None = None  # by `count_orders`, for this window

    @classmethod
    def from_settings(
        cls, settings: Settings, retrier: Retrier, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> BusinessCentralSource:
        client = BusinessCentralClient(
            Connection.from_settings(settings),
            retrier,
            page_size=page_size,
            timeout_seconds=settings.task.request_timeout_seconds,
        )
        bc = settings.erp.business_central
        tracking = Tracking(
            bc.shipment_tracking_field, bc.shipment_tracking_api, bc.tracking_url_template
        )
        return cls(client, ledger_path(settings), tracking)

    # --- the protocol ----------------------------------------------------------------------

    async def count_orders(self, window_start: datetime) -> int:
        """What `iter_orders` reads: the open orders in the window (one `$count` request) and
        those that left `salesOrders`. For the second the posted shipments are read first (as
        the run does next, which then does not read them again): the orders known to have left,
        the fully shipped ones no longer open (looked up by number, a few per request), and
        those never read whose invoices rebuild them (the first run's many)."""
        first_day = first_order_day(window_start).isoformat()
        open_orders = await self.client.count(
            "salesOrders", {"$filter": f"orderDate ge {first_day}"}, "GET salesOrders/$count"
        )
        ledger = await self._open_ledger()
        await asyncio.to_thread(ledger.start_run, first_day)
        await self._read_shipments(ledger, first_day)
        self._shipments_read_for = first_day
        return open_orders + await self._count_left(ledger, first_day)

    async def _count_left(self, ledger: Ledger, first_day: str) -> int:
        """The orders `iter_orders` will read after the open ones: not among the open orders
        of the window (`_open_in_window`), and known to the ledger or rebuilt from invoices."""
        left = 0
        after = ""
        while rows := await asyncio.to_thread(
            ledger.shipped_in_window, first_day, after, LEFT_ORDERS_CHUNK
        ):
            after = rows[-1][0]
            shipped = await asyncio.to_thread(ledger.shipped_quantities, [n for n, _, _ in rows])
            leaving = []
            for number, document, gone in rows:
                doc = with_shipped_quantities(orjson.loads(document), shipped.get(number, {}))
                if gone or doc["shipping_status"] == "shipped":  # only these leave `salesOrders`
                    leaving.append(number)
            for start in range(0, len(leaving), ORDER_LOOKUP_BATCH):
                numbers = leaving[start : start + ORDER_LOOKUP_BATCH]
                left += len(numbers) - len(await self._open_in_window(numbers, first_day))
        after = ""
        while wanted := await asyncio.to_thread(
            ledger.unread_shipped_orders, first_day, after, INVOICE_LOOKUP_BATCH
        ):
            after = wanted[-1][0]
            numbers = [number for number, _ in wanted]
            invoiced = await self._numbers_in("salesInvoices", "orderNumber", numbers)
            if invoiced:
                left += len(invoiced - await self._open_in_window(sorted(invoiced), first_day))
        return left

    async def _open_in_window(self, numbers: Sequence[str], first_day: str) -> set[str]:
        """Which of `numbers` the run's scan of open orders reads."""
        return await self._numbers_in(
            "salesOrders", "number", numbers, also=f"orderDate ge {first_day}"
        )

    async def _numbers_in(
        self, entity_set: str, field: str, numbers: Sequence[str], *, also: str = ""
    ) -> set[str]:
        """Which of `numbers` `entity_set` holds (by `field`, and the filter `also`), reading
        that field alone."""
        wanted = _any_equal(field, numbers)
        params = {"$filter": f"({wanted}) and {also}" if also else wanted, "$select": field}
        found: set[str] = set()
        async with self._pages(entity_set, params) as pages:
            async for page in pages:
                found.update(str(row.get(field)) for row in page if isinstance(row, dict))
        return found & set(numbers)

    async def iter_orders(self, window_start: datetime) -> AsyncIterator[list[OrderDocument]]:
        first_day = first_order_day(window_start).isoformat()
        ledger = await self._open_ledger()
        methods = await self._shipment_methods()
        if self._shipments_read_for != first_day:  # else `count_orders` has just done both
            await asyncio.to_thread(ledger.start_run, first_day)
            await self._read_shipments(ledger, first_day)
        self._shipments_read_for = None
        if self.tracking.field:
            await self._read_tracking(ledger, first_day)
        refunds = await self._refunds_since(first_day)
        async with aclosing(self._open_orders(ledger, first_day, methods)) as chunks:
            async for chunk in chunks:
                yield _with_refunds(chunk, refunds)
        async with aclosing(self._left_orders(ledger, first_day)) as chunks:
            async for chunk in chunks:
                yield _with_refunds(chunk, refunds)
        async with aclosing(self._unread_invoiced_orders(ledger, first_day, methods)) as chunks:
            async for chunk in chunks:
                yield _with_refunds(chunk, refunds)

    async def get_orders(self, order_ids: Sequence[str]) -> dict[str, OrderDocument | None]:
        """These orders by number, whatever their date, without reading the window:
        `salesOrders?$filter=number eq '...'` (with lines and customer) for open orders; for
        the rest, their posted `salesShipments` and the document the ledger last kept (or,
        for one never read, its posted `salesInvoices`), as a run builds an order that left.
        An order with neither an open order nor a posted shipment is not in the ERP."""
        found: dict[str, OrderDocument | None] = dict.fromkeys(order_ids)
        wanted = [number for number in found if number]
        if not wanted:
            return found
        methods = await self._shipment_methods()
        for start in range(0, len(wanted), ORDER_LOOKUP_BATCH):
            numbers = wanted[start : start + ORDER_LOOKUP_BATCH]
            open_orders = await self._open_orders_numbered(numbers, methods)
            found.update(open_orders)
            left = [number for number in numbers if number not in open_orders]
            if left:
                found.update(await self._left_orders_numbered(left, methods))
            refunds = await self._refunds_of_orders(numbers)
            for number in numbers:
                doc = found.get(number)
                if doc is not None and number in refunds:
                    found[number] = {**doc, "payment_status": refunds[number]}
        return found

    async def invoiced(self, order_ids: Sequence[str]) -> set[str]:
        """Those of these orders that have a posted sales invoice (`salesInvoices` with their
        `orderNumber`): an order that left `salesOrders` with one was invoiced, not cancelled
        (interfaces.md §7)."""
        found: set[str] = set()
        numbers = [number for number in dict.fromkeys(order_ids) if number]
        for start in range(0, len(numbers), INVOICE_LOOKUP_BATCH):
            chunk = numbers[start : start + INVOICE_LOOKUP_BATCH]
            params = {"$filter": _any_equal("orderNumber", chunk), "$select": "number,orderNumber"}
            async with self._pages("salesInvoices", params) as pages:
                async for page in pages:
                    found.update(str(invoice.get("orderNumber")) for invoice in page)
        return found & set(numbers)

    async def check_connection(self) -> str:
        """Prove the token (client id, secret, tenant), the environment, the company and the
        right to read sales orders and credit memos; names the company reached."""
        connection = self.client.connection
        body = await self.client.get_json(
            f"{connection.base_url}/companies?$select=id,name,displayName", "GET companies"
        )
        companies = body.get("value") if isinstance(body, dict) else None
        company = _company(companies if isinstance(companies, list) else [], connection.company_id)
        await self.client.get_json(
            f"{connection.company_url}/salesOrders?$top=1&$select=number", "GET salesOrders"
        )
        # Every run reads the credit memos too (refunds): a permission set without them
        # would fail the first run, so it fails here.
        await self.client.get_json(
            f"{connection.company_url}/salesCreditMemos?$top=1&$select=number",
            "GET salesCreditMemos",
        )
        name = str(company.get("displayName") or company.get("name") or connection.company_id)
        return f"Business Central company {name} at {display_url(connection.base_url)}"

    async def close(self) -> None:
        try:
            await self.client.close()
        finally:
            if self._ledger is not None:
                ledger, self._ledger = self._ledger, None
                await asyncio.to_thread(ledger.close)

    # --- the reads -------------------------------------------------------------------------

    async def _open_orders(
        self, ledger: Ledger, first_day: str, methods: Mapping[str, str]
    ) -> AsyncIterator[list[OrderDocument]]:
        params = {
            "$filter": f"orderDate ge {first_day}",
            "$select": ",".join(ORDER_FIELDS),
            "$expand": (
                f"salesOrderLines($select={','.join(ORDER_LINE_FIELDS)}),"
                f"customer($select={','.join(CUSTOMER_FIELDS)})"
            ),
        }
        async with self._pages("salesOrders", params) as pages:
            async for page in pages:
                docs = await self._with_tracking(
                    ledger, [order_document(order, methods) for order in page]
                )
                rows: list[OrderRow] = [
                    (doc["order_id"], _day_of(doc["order_date"]), doc)
                    for doc in docs
                    if doc["order_id"]
                ]
                await asyncio.to_thread(ledger.remember_orders, rows)
                if docs:
                    yield docs

    async def _read_shipments(self, ledger: Ledger, first_day: str) -> None:
        read_from, watermark = await asyncio.to_thread(ledger.shipments_position)
        if read_from is None or watermark is None or first_day < read_from:
            since, complete = f"postingDate ge {first_day}", True
        else:
            overlap = datetime.fromisoformat(watermark) - SHIPMENTS_OVERLAP
            since, complete = f"lastModifiedDateTime gt {_odata_datetime(overlap)}", False
        params = {
            "$filter": since,
            "$select": ",".join(SHIPMENT_FIELDS),
            "$expand": f"salesShipmentLines($select={','.join(SHIPMENT_LINE_FIELDS)})",
        }
        async with self._pages("salesShipments", params) as pages:
            async for page in pages:
                rows = [row for row in map(_shipment_row, page) if row is not None]
                newest = max(filter(None, map(_modified_at, page)), default=None)
                await asyncio.to_thread(ledger.remember_shipments, rows, newest)
        if complete:
            await asyncio.to_thread(ledger.shipments_read_from, first_day)

    async def _read_tracking(self, ledger: Ledger, first_day: str) -> None:
        """The tracking numbers of posted shipments: read as the shipments are (all of the
        window the first time, and after a change of field or route; else since the newest
        one read, less the overlap)."""
        tracking = self.tracking
        read_from, watermark = await asyncio.to_thread(ledger.tracking_position, tracking.source)
        if read_from is None or watermark is None or first_day < read_from:
            since, complete = f"postingDate ge {first_day}", True
            await asyncio.to_thread(ledger.forget_tracking_watermark, tracking.source)
        else:
            overlap = datetime.fromisoformat(watermark) - SHIPMENTS_OVERLAP
            since, complete = f"lastModifiedDateTime gt {_odata_datetime(overlap)}", False
        fields = ("number", "orderNumber", "postingDate", "lastModifiedDateTime", tracking.field)
        params = {"$filter": since, "$select": ",".join(fields)}
        what = f"GET salesShipments ({tracking.field})"
        pages = self.client.pages("salesShipments", params, what, route=tracking.route)
        async with aclosing(pages) as reading:
            async for page in reading:
                rows = [row for row in (_tracking_row(s, tracking.field) for s in page) if row]
                newest = max(filter(None, map(_modified_at, page)), default=None)
                await asyncio.to_thread(ledger.remember_tracking, rows, newest)
        if complete:
            await asyncio.to_thread(ledger.tracking_read_from, first_day, tracking.source)

    async def _with_tracking(
        self, ledger: Ledger, docs: list[OrderDocument]
    ) -> list[OrderDocument]:
        """Each order with its latest shipment's tracking number (and URL), when known."""
        if not self.tracking.field or not docs:
            return docs
        numbers = [doc["order_id"] for doc in docs if doc.get("order_id")]
        found = await asyncio.to_thread(ledger.tracking_numbers, numbers)
        template = self.tracking.url_template
        return [
            with_tracking(doc, found.get(doc.get("order_id", ""), ""), template) for doc in docs
        ]

    async def _left_orders(
        self, ledger: Ledger, first_day: str
    ) -> AsyncIterator[list[OrderDocument]]:
        after = ""
        while rows := await asyncio.to_thread(
            ledger.left_orders, first_day, after, LEFT_ORDERS_CHUNK
        ):
            numbers = [number for number, _ in rows]
            shipped = await asyncio.to_thread(ledger.shipped_quantities, numbers)
            docs = await self._with_tracking(
                ledger,
                [
                    with_shipped_quantities(orjson.loads(document), shipped.get(number, {}))
                    for number, document in rows
                ],
            )
            await _remember_left(ledger, docs)
            yield docs
            after = numbers[-1]

    async def _unread_invoiced_orders(
        self, ledger: Ledger, first_day: str, methods: Mapping[str, str]
    ) -> AsyncIterator[list[OrderDocument]]:
        after = ""
        while wanted := await asyncio.to_thread(
            ledger.unread_shipped_orders, first_day, after, INVOICE_LOOKUP_BATCH
        ):
            numbers = [number for number, _ in wanted]
            invoices = await self._invoices_of(numbers)
            shipped = await asyncio.to_thread(ledger.shipped_quantities, numbers)
            docs = await self._with_tracking(
                ledger,
                [
                    invoiced_order_document(
                        number, invoices[number], day, shipped.get(number, {}), methods
                    )
                    for number, day in wanted
                    if number in invoices
                ],
            )
            await _remember_left(ledger, docs)
            missing = [(number, day) for number, day in wanted if number not in invoices]
            await asyncio.to_thread(ledger.remember_unrebuildable, missing)
            if docs:
                yield docs
            after = numbers[-1]

    async def _open_orders_numbered(
        self, numbers: Sequence[str], methods: Mapping[str, str]
    ) -> dict[str, OrderDocument]:
        params = {
            "$filter": _any_equal("number", numbers),
            "$select": ",".join(ORDER_FIELDS),
            "$expand": (
                f"salesOrderLines($select={','.join(ORDER_LINE_FIELDS)}),"
                f"customer($select={','.join(CUSTOMER_FIELDS)})"
            ),
        }
        wanted = set(numbers)
        found: dict[str, OrderDocument] = {}
        async with self._pages("salesOrders", params) as pages:
            async for page in pages:
                for order in page:
                    doc = order_document(order, methods)
                    if doc["order_id"] in wanted:
                        found[doc["order_id"]] = doc
        return found

    async def _left_orders_numbered(
        self, numbers: Sequence[str], methods: Mapping[str, str]
    ) -> dict[str, OrderDocument]:
        """Orders that left `salesOrders`: known through their posted shipments."""
        params = {
            "$filter": _any_equal("orderNumber", numbers),
            "$select": ",".join(SHIPMENT_FIELDS),
            "$expand": f"salesShipmentLines($select={','.join(SHIPMENT_LINE_FIELDS)})",
        }
        shipped: dict[str, dict[int, float]] = {}
        first_posted: dict[str, str] = {}
        async with self._pages("salesShipments", params) as pages:
            async for page in pages:
                for row in filter(None, map(_shipment_row, page)):
                    _, order, posted, lines = row
                    totals = shipped.setdefault(order, {})
                    for sequence, quantity in lines.items():
                        totals[sequence] = totals.get(sequence, 0.0) + quantity
                    first_posted[order] = min(first_posted.get(order, posted), posted)
        shipped_orders = [number for number in numbers if number in shipped]
        if not shipped_orders:
            return {}
        kept = await asyncio.to_thread(
            Ledger.documents_of, self.ledger_file, self._identity, shipped_orders
        )
        found = {
            number: with_shipped_quantities(orjson.loads(kept[number]), shipped[number])
            for number in shipped_orders
            if number in kept
        }
        rebuild = [number for number in shipped_orders if number not in kept]
        if rebuild:
            invoices = await self._invoices_of(rebuild)
            for number in rebuild:
                if number in invoices:
                    found[number] = invoiced_order_document(
                        number, invoices[number], first_posted[number], shipped[number], methods
                    )
        return found

    async def _invoices_of(self, order_numbers: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Order number -> its posted invoices (in number order), for a few orders."""
        params = {
            "$filter": _any_equal("orderNumber", order_numbers),
            "$select": ",".join(INVOICE_FIELDS),
            "$expand": (
                f"salesInvoiceLines($select={','.join(INVOICE_LINE_FIELDS)}),"
                f"customer($select={','.join(CUSTOMER_FIELDS)})"
            ),
        }
        found: dict[str, list[dict[str, Any]]] = {}
        async with self._pages("salesInvoices", params) as pages:
            async for page in pages:
                for invoice in page:
                    found.setdefault(str(invoice.get("orderNumber")), []).append(invoice)
        for invoices in found.values():
            invoices.sort(key=lambda invoice: str(invoice.get("number")))
        return found

    async def _refunds_since(self, first_day: str) -> dict[str, str]:
        """Order number -> refunded / partially_refunded, from the credit memos posted in the
        window (one paged read of `salesCreditMemos`) and the invoices they name."""
        params = {
            "$filter": f"postingDate ge {first_day}",
            "$select": ",".join(CREDIT_MEMO_FIELDS),
        }
        return await self._refunds(await self._read_all("salesCreditMemos", params))

    async def _refunds_of_orders(self, order_numbers: Sequence[str]) -> dict[str, str]:
        """The same for a few orders looked up by number: their invoices, then the credit
        memos naming one of them."""
        invoices = await self._read_all(
            "salesInvoices",
            {
                "$filter": _any_equal("orderNumber", order_numbers),
                "$select": ",".join(CREDITED_INVOICE_FIELDS),
            },
        )
        terms = [
            term
            for invoice in invoices
            for term in (
                f"invoiceNumber eq {_odata_text(str(invoice.get('number')))}",
                f"invoiceId eq {invoice.get('id')}",
            )
            if isinstance(invoice.get("id"), str) and isinstance(invoice.get("number"), str)
        ]
        memos: list[dict[str, Any]] = []
        for start in range(0, len(terms), 2 * CREDIT_MEMO_LOOKUP_BATCH):
            chunk = terms[start : start + 2 * CREDIT_MEMO_LOOKUP_BATCH]
            memos += await self._read_all(
                "salesCreditMemos",
                {"$filter": " or ".join(chunk), "$select": ",".join(CREDIT_MEMO_FIELDS)},
            )
        return refund_statuses(memos, invoices)

    async def _refunds(self, memos: list[dict[str, Any]]) -> dict[str, str]:
        ids, numbers = credited_invoices(memos)
        named: list[dict[str, Any]] = []
        select = ",".join(CREDITED_INVOICE_FIELDS)
        for field, values in (("id", sorted(ids)), ("number", sorted(numbers))):
            for start in range(0, len(values), INVOICE_LOOKUP_BATCH):
                chunk = values[start : start + INVOICE_LOOKUP_BATCH]
                terms = (
                    " or ".join(f"id eq {value}" for value in chunk)
                    if field == "id"
                    else _any_equal("number", chunk)
                )
                named += await self._read_all(
                    "salesInvoices", {"$filter": terms, "$select": select}
                )
        orders = sorted(
            {
                order
                for invoice in named
                if isinstance(order := invoice.get("orderNumber"), str) and order
            }
        )
        invoices: list[dict[str, Any]] = []
        for start in range(0, len(orders), INVOICE_LOOKUP_BATCH):
            chunk = orders[start : start + INVOICE_LOOKUP_BATCH]
            invoices += await self._read_all(
                "salesInvoices", {"$filter": _any_equal("orderNumber", chunk), "$select": select}
            )
        return refund_statuses(memos, invoices)

    async def _read_all(self, entity_set: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every entity of a small read (a few fields each), all pages."""
        found: list[dict[str, Any]] = []
        async with self._pages(entity_set, params) as pages:
            async for page in pages:
                found.extend(entity for entity in page if isinstance(entity, dict))
        return found

    async def _shipment_methods(self) -> dict[str, str]:
        params = {"$select": ",".join(SHIPMENT_METHOD_FIELDS)}
        names: dict[str, str] = {}
        async with self._pages("shipmentMethods", params) as pages:
            async for page in pages:
                for method in page:
                    name = method.get("displayName") or method.get("code")
                    if isinstance(method.get("id"), str) and isinstance(name, str):
                        names[method["id"]] = name
        return names

    # --- plumbing --------------------------------------------------------------------------

    def _pages(
        self, entity_set: str, params: Mapping[str, str]
    ) -> aclosing[AsyncIterator[list[dict[str, Any]]]]:
        return aclosing(self.client.pages(entity_set, params, f"GET {entity_set}"))

    @property
    def _identity(self) -> str:
        connection = self.client.connection
        return f"{connection.base_url}|{connection.company_id.lower()}"

    async def _open_ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = await asyncio.to_thread(Ledger, self.ledger_file, self._identity)
        return self._ledger


def _with_refunds(docs: list[OrderDocument], refunds: Mapping[str, str]) -> list[OrderDocument]:
    """Each order a credit memo refunds with that payment status (interfaces.md §7)."""
    if not refunds:
        return docs
    return [
        {**doc, "payment_status": refunds[doc["order_id"]]}
        if doc.get("order_id") in refunds
        else doc
        for doc in docs
    ]


async def _remember_left(ledger: Ledger, docs: list[OrderDocument]) -> None:
    rows: list[OrderRow] = [
        (doc["order_id"], _day_of(doc["order_date"]), doc) for doc in docs if doc["order_id"]
    ]
    await asyncio.to_thread(ledger.remember_orders, rows, gone=True)


def _company(companies: list[Any], company_id: str) -> dict[str, Any]:
    for company in companies:
        if isinstance(company, dict) and str(company.get("id", "")).lower() == company_id.lower():
            return company
    known = "; ".join(
        f"{company.get('id')} ({company.get('name')})"
        for company in companies[:5]
        if isinstance(company, dict)
    )
    raise BusinessCentralError(
        f"erp.business_central.company_id: no company {company_id!r} in this environment"
        + (f"; its companies: {known}" if known else " (it has no companies)")
    )


def _shipment_row(shipment: Mapping[str, Any]) -> ShipmentRow | None:
    number, order = shipment.get("number"), shipment.get("orderNumber")
    posted = shipment.get("postingDate")
    if not (isinstance(number, str) and isinstance(order, str) and order):
        return None
    lines: dict[int, float] = {}
    for line in shipment.get("salesShipmentLines") or ():
        sequence, quantity = line.get("sequence"), line.get("quantity")
        if type(sequence) is int and type(quantity) in (int, float) and quantity:
            lines[sequence] = lines.get(sequence, 0.0) + quantity
    return number, order, str(posted), lines


def _tracking_row(shipment: Mapping[str, Any], field: str) -> TrackingRow | None:
    number, order = shipment.get("number"), shipment.get("orderNumber")
    if not (isinstance(number, str) and isinstance(order, str) and order):
        return None
    value = shipment.get(field)
    tracking = value.strip() if isinstance(value, str) else ""
    return number, order, str(shipment.get("postingDate")), tracking


def _modified_at(entity: Mapping[str, Any]) -> str | None:
    """`lastModifiedDateTime` as UTC ISO text with microseconds (texts then compare as times)."""
    value = entity.get("lastModifiedDateTime")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _odata_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _any_equal(field: str, values: Sequence[str]) -> str:
    return " or ".join(f"{field} eq {_odata_text(value)}" for value in values)


def _odata_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _day_of(order_date: Any) -> str:
    try:
        return datetime.fromisoformat(str(order_date)).date().isoformat()
    except ValueError:
        return ""
