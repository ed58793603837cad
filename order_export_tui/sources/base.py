"""The protocol every ERP source implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Protocol

OrderDocument = dict[str, Any]


class SourceError(Exception):
    """The ERP could not be read (after the source's own retries). Fails the run."""


class OrderSource(Protocol):
    """Reads an ERP's orders as order documents.

    `window_start` is an aware datetime: only orders dated on or after it are yielded.
    Documents are yielded in chunks so memory stays flat however many orders there are;
    a document may be malformed (the engine validates and skips it), but always has a
    string `order_id`.
    """

    name: str

    async def count_orders(self, window_start: datetime) -> int | None:
        """How many orders the window holds, or None when the ERP cannot tell cheaply."""
        ...

    def iter_orders(self, window_start: datetime) -> AsyncIterator[list[OrderDocument]]:
        """The window's orders, in chunks, in a stable order."""
        ...

    async def check_connection(self) -> str:
        """Prove that the ERP can be read (`check --connect`), raising `SourceError` naming
        what is wrong; returns what was reached in a few words, e.g. "Business Central
        company Contoso Ltd. at https://...". Never a secret or a URL's user-info."""

    async def get_orders(self, order_ids: Sequence[str]) -> dict[str, OrderDocument | None]:
        """These orders by id, whatever their date, without reading the window: each id maps
        to its document (built exactly as `iter_orders` builds it, so its content hash is the
        same), or None when the ERP does not have it."""
        ...

    async def close(self) -> None: ...


class InvoicingSource(Protocol):
    """The optional capability of a source whose ERP posts invoices (Business Central): an
    order it no longer lists was invoiced, not cancelled, when it has a posted invoice
    (interfaces.md §7). A source without it invoices nothing (`invoiced_orders`)."""

    async def invoiced(self, order_ids: Sequence[str]) -> set[str]:
        """Those of these order ids that have a posted invoice."""
        ...


async def lookup_orders(
    source: OrderSource, order_ids: Sequence[str]
) -> dict[str, OrderDocument | None] | None:
    """`source.get_orders(order_ids)`, or None for a source that cannot look orders up by id
    (the caller then reads the window)."""
    lookup = getattr(source, "get_orders", None)
    if lookup is None:
        return None
    found: dict[str, OrderDocument | None] = await lookup(list(order_ids))
    return found


async def fetch_order(source: OrderSource, order_id: str) -> OrderDocument | None:
    """One order by its id; None when the source cannot look one up or does not have it.
    Payment callbacks use it to re-send an order that a run exported (runs keep no copy of
    every document: it would halve their speed)."""
    found = await lookup_orders(source, [order_id])
    return None if found is None else found.get(order_id)


async def invoiced_orders(source: OrderSource, order_ids: Sequence[str]) -> set[str]:
    """`source.invoiced(order_ids)`: the orders of these that the ERP invoiced; none for a
    source without invoices (the capability is optional, like `get_orders`)."""
    invoiced = getattr(source, "invoiced", None)
    if invoiced is None or not order_ids:
        return set()
    found: set[str] = await invoiced(list(order_ids))
    return found & set(order_ids)
