"""What Business Central's posted sales credit memos make of an order's payment status
(interfaces.md §7).

A credit memo names the invoice it credits (`invoiceId` and/or `invoiceNumber`); the invoice
names its order (`orderNumber`). An order whose invoices are credited in full (the credit
memos' `totalAmountIncludingTax` add up to at least the invoices' own, to the cent) is
`refunded`; one credited in part is `partially_refunded`; any other keeps its status. A draft
credit memo (`status` "Draft") is not posted, and a cancelled one ("Canceled": a corrective
invoice undid it) credits nothing. Values that are not what API v2.0 documents (a missing
number, an amount that is no finite number, a credit memo naming no known invoice) are
ignored: they can never fail a run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

REFUNDED = "refunded"
PARTIALLY_REFUNDED = "partially_refunded"
NOT_CREDITING = frozenset({"draft", "canceled", "cancelled"})
CENT = 0.005  # amounts that round to the same cent are the same

CREDIT_MEMO_FIELDS = ("number", "invoiceId", "invoiceNumber", "status", "totalAmountIncludingTax")
CREDITED_INVOICE_FIELDS = ("id", "number", "orderNumber", "totalAmountIncludingTax")
_ZERO_GUID = "00000000-0000-0000-0000-000000000000"


def crediting(memo: Mapping[str, Any]) -> bool:
    """Whether a credit memo is posted and stands (not a draft, not cancelled)."""
    status = memo.get("status")
    return isinstance(status, str) and status.strip().lower() not in NOT_CREDITING


def invoice_keys(memo: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The invoice a credit memo names: (its id, lower case; its number); None for either
    it does not give."""
    invoice_id, number = memo.get("invoiceId"), memo.get("invoiceNumber")
    guid = invoice_id.strip().lower() if isinstance(invoice_id, str) else ""
    text = number.strip() if isinstance(number, str) else ""
    return (guid if guid and guid != _ZERO_GUID else None), (text or None)


def amount(entity: Mapping[str, Any]) -> float | None:
    """`totalAmountIncludingTax` as a finite number, else None."""
    value = entity.get("totalAmountIncludingTax")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def refund_statuses(
    memos: Iterable[Mapping[str, Any]], invoices: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """Order number -> `refunded` / `partially_refunded`, for the orders the credit memos
    credit. `invoices`: every posted invoice of those orders (an order invoiced twice is
    refunded only when both are credited)."""
    by_id: dict[str, str] = {}
    by_number: dict[str, str] = {}
    invoiced: dict[str, float] = {}
    for invoice in invoices:
        order, number, total = invoice.get("orderNumber"), invoice.get("number"), amount(invoice)
        if not (isinstance(order, str) and order and isinstance(number, str) and number):
            continue
        if number in by_number:  # the same invoice read twice
            continue
        by_number[number] = order
        invoice_id = invoice.get("id")
        if isinstance(invoice_id, str) and invoice_id:
            by_id[invoice_id.strip().lower()] = order
        invoiced[order] = invoiced.get(order, 0.0) + max(total or 0.0, 0.0)
    credited: dict[str, float] = {}
    for memo in memos:
        if not crediting(memo):
            continue
        guid, number = invoice_keys(memo)
        order = (by_id.get(guid) if guid else None) or (by_number.get(number) if number else None)
        value = amount(memo)
        if order is None or value is None or value <= 0:
            continue
        credited[order] = credited.get(order, 0.0) + value
    return {
        order: REFUNDED if value >= invoiced.get(order, 0.0) - CENT else PARTIALLY_REFUNDED
        for order, value in credited.items()
        if value >= CENT
    }


def credited_invoices(memos: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """The invoices standing credit memos name: (their ids, their numbers)."""
    ids: set[str] = set()
    numbers: set[str] = set()
    for memo in memos:
        if crediting(memo):
            guid, number = invoice_keys(memo)
            if guid:
                ids.add(guid)
            if number:
                numbers.add(number)
    return ids, numbers
