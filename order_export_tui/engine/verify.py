"""Reading the platform's copy back and naming its drift from the ERP (interfaces.md §8).

One pass, both sides streamed: the destination's read-back (sorted by order id on disk) and
the ERP's window (each valid document's `platform_view`, with the payment status a webstore's
callback set, as a run would send it, spilled and sorted on disk), compared by
`engine.drift.compare`. Nothing is written to the platform here; a repair is a run
(`ExportService.verify`). A platform that cannot be read raises: verify never calls an
unread copy true.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from order_export_tui.destinations.base import Destination
from order_export_tui.destinations.readback import PlatformOrder, platform_view
from order_export_tui.destinations.readback_spill import SortedSpill, erp_spill
from order_export_tui.engine.cancelled_document import cancelled_document
from order_export_tui.engine.drift import Drift, compare
from order_export_tui.orders import OrderDocument, order_problem
from order_export_tui.sources.base import OrderSource
from order_export_tui.state import StateStore
from order_export_tui.transport.retry import Retrier


@dataclass(frozen=True, slots=True)
class CopyReading:
    """What one read of the platform's copy found: `checked` orders (the ERP's valid orders
    of the window and the platform's orders the ERP does not have), their drift in order-id
    order, and for each `extra` order the document that marks it cancelled."""

    checked: int
    drift: tuple[Drift, ...]
    cancelled: dict[str, OrderDocument] = field(default_factory=dict)
    retried: int = 0

    @property
    def drifted_ids(self) -> list[str]:
        """Each drifted order once, in order."""
        return list(dict.fromkeys(item.order_id for item in self.drift))

    @property
    def held_under(self) -> dict[str, tuple[str, ...]]:
        """For each order the platform holds under an e-mail not the ERP's, those e-mails:
        a repair takes the order away from them (interfaces.md §7's move)."""
        found: dict[str, dict[str, None]] = {}
        for item in self.drift:
            if item.field == "email" and isinstance(item.platform, str) and item.platform:
                found.setdefault(item.order_id, {})[item.platform] = None
        return {order_id: tuple(emails) for order_id, emails in found.items()}

    @property
    def to_resend(self) -> list[str]:
        """The orders a repair sends as the ERP has them (`missing`, `different`)."""
        return list(dict.fromkeys(i.order_id for i in self.drift if i.kind != "extra"))


class UnreadableCopyError(Exception):
    """The platform's copy could not be read (after the retries): never "in sync"."""


async def read_copy(
    state: StateStore,
    *,
    identity: str | None = None,
    source: OrderSource,
    destination: Destination,
    start: datetime,
    retrier: Retrier,
) -> CopyReading:
    """Compare the ERP's orders dated from `start` with the destination's copy of them.
    `identity`: the destination's, whose documents in the state an `extra` order's
    cancelled version starts from (None: the state's current destination)."""
    read_back = getattr(destination, "read_back", None)
    if read_back is None:
        raise UnreadableCopyError(f"the {destination.name} destination cannot be read back")
    held: SortedSpill[PlatformOrder] = await read_back(start, retrier)
    with held, erp_spill() as erp:
        listed: set[str] = set()  # the ERP's invalid orders: never `extra`
        async for chunk in source.iter_orders(start):
            valid: list[OrderDocument] = []
            for doc in chunk:
                if order_problem(doc) is None:
                    valid.append(doc)
                elif isinstance(doc, dict) and isinstance(doc.get("order_id"), str):
                    listed.add(doc["order_id"])
            overrides = state.payment_overrides([doc["order_id"] for doc in valid])
            erp.add_many(platform_view(_as_sent(doc, overrides)) for doc in valid)
        drift = tuple(compare(erp.sorted(), held.sorted(), listed=listed))
        extra = {item.order_id for item in drift if item.kind == "extra"}
        cancelled = {
            order.order_id: cancelled_document(
                state.confirmed_document(order.order_id, destination=identity), order
            )
            for order in _first_uncancelled(held.sorted(), extra)
        }
        checked = len(erp) + len(extra)
    return CopyReading(checked, drift, cancelled, retrier.retried)


def _as_sent(doc: OrderDocument, overrides: dict[str, str]) -> OrderDocument:
    """The document as a run sends it: a payment callback's status wins over the ERP's."""
    status = overrides.get(doc["order_id"])
    return doc if status is None else {**doc, "payment_status": status}


def _first_uncancelled(
    orders: Iterator[PlatformOrder], wanted: set[str]
) -> Iterator[PlatformOrder]:
    seen: set[str] = set()
    for order in orders:
        if order.order_id in wanted and order.order_id not in seen and not order.cancelled:
            seen.add(order.order_id)
            yield order
