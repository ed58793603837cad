"""The cancelled rule (interfaces.md §7): what the ERP took away reaches the platform.

After a run that read its whole window (from its first day on, without a read failure, not
cancelled), the exported orders of that window the run did not meet are gone from the ERP
(`StateStore.gone_unread`: exported before the run started; one sent only in real time gets
a day to reach the ERP). Each one is then:

- sent once as cancelled (`payment_status: "cancelled"`, the rest of its document as the
  destination last confirmed it), and forgotten once the destination confirmed it: an order
  not shipped, not already cancelled, and not invoiced by the ERP (`sources.base.
  invoiced_orders`: a Business Central order that left `salesOrders` with a posted invoice
  was invoiced, not cancelled);
- forgotten without a send otherwise (shipped, invoiced, already cancelled at the platform,
  still in the ERP under a date outside the window (looked up by id, where the source can),
  or exported before the state kept documents: there is nothing to send it from).

A cancellation the destination refuses is a skipped order (with the platform's reason) and
stays exported: the next complete run tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Sequence
from datetime import datetime
from typing import Any

import orjson

from order_export_tui.destinations.base import Destination, OrderChange
from order_export_tui.engine.batches import CancelledAtBoundaryError, SkipBudgetExceededError
from order_export_tui.engine.events import (
    BatchFinished,
    BatchStarted,
    EngineEvent,
    ItemSkipped,
    RunCounts,
)
from order_export_tui.orders import OrderDocument, order_problem
from order_export_tui.sources.base import OrderSource, invoiced_orders, lookup_orders
from order_export_tui.state import ExportedOrder, StateStore
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import Retrier

log = logging.getLogger("order_export.engine")

CANCELLED = "cancelled"
SHIPPED = "shipped"
_IDS_LOGGED = 20  # order ids named per log line; the rest are counted


def cancelled_document(order: ExportedOrder) -> OrderDocument | None:
    """The document the destination last confirmed for `order`, as cancelled; None when the
    state kept none (or what it kept is no valid order document)."""
    if order.document is None:
        return None
    try:
        doc: Any = orjson.loads(order.document)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    cancelled = {**doc, "payment_status": CANCELLED}
    return cancelled if order_problem(cancelled) is None else None


def may_be_cancelled(order: ExportedOrder) -> bool:
    """Whether the platform may still count this gone order as a sale: it was not shipped,
    and the destination did not already confirm it as cancelled."""
    return order.shipping_status != SHIPPED and order.payment_status != CANCELLED


class Removals:
    """One complete run's removals: the gone orders sent as cancelled, the rest forgotten."""

    def __init__(
        self,
        *,
        identity: str,
        run_id: int,
        state: StateStore,
        source: OrderSource,
        destination: Destination,
        retrier: Retrier,
        counts: RunCounts,
        skip_budget: int,
        batch_size: int,
        emit: Callable[[EngineEvent], None],
        clock: Callable[[], datetime],
        cancel_requested: Callable[[], bool],
        first_batch_no: int,
    ) -> None:
        self.identity = identity  # whose copy: the destination's identity
        self.run_id = run_id
        self.state = state
        self.source = source
        self.destination = destination
        self.retrier = retrier
        self.counts = counts
        self.skip_budget = skip_budget
        self.batch_size = max(1, batch_size)
        self.emit = emit
        self.clock = clock
        self.cancel_requested = cancel_requested
        self._batch_no = first_batch_no - 1

    async def settle(self, *, since: datetime, started_at: datetime, read: Container[str]) -> None:
        """Send the gone orders of the window from `since` on as cancelled, then forget them
        (`read`: the ids the run met; the engine's pipeline holds them already)."""
        if self.cancel_requested():
            raise CancelledAtBoundaryError
        gone = self.state.gone_unread(
            since=since, started_at=started_at, read=read, destination=self.identity
        )
        if not gone:
            return
        candidates = [order for order in gone if may_be_cancelled(order)]
        ids = [order.order_id for order in candidates]
        elsewhere = await still_listed(self.source, ids)
        invoiced = await invoiced_orders(self.source, [i for i in ids if i not in elsewhere])
        changes: list[OrderChange] = []
        unsendable: list[str] = []
        for order in candidates:
            if order.order_id in invoiced or order.order_id in elsewhere:
                continue
            doc = cancelled_document(order)
            if doc is None:
                unsendable.append(order.order_id)
            else:
                changes.append(OrderChange(doc, "updated", order))
        sending = {change.order_id for change in changes}
        quiet = [order.order_id for order in gone if order.order_id not in sending]
        self.state.forget_exported(quiet, destination=self.identity)
        self._log_forgotten(quiet, invoiced, unsendable)
        for first in range(0, len(changes), self.batch_size):
            if self.cancel_requested():
                raise CancelledAtBoundaryError
            await self._send(changes[first : first + self.batch_size])

    async def _send(self, changes: Sequence[OrderChange]) -> None:
        self._batch_no += 1
        self.emit(BatchStarted(self.run_id, self._batch_no, len(changes)))
        rejected = await self.destination.send_batch(changes, self.retrier)
        confirmed = [change.order_id for change in changes if change.order_id not in rejected]
        name = self.destination.name
        skipped = {
            order_id: redact(f"rejected by {name} as cancelled: {reason}")
            for order_id, reason in rejected.items()
        }
        with self.state.transaction():
            self.state.forget_exported(confirmed, destination=self.identity)
            self.state.record_batch(
                run_id=self.run_id,
                now=self.clock(),
                exported=[],
                skipped=skipped,
                resolved=confirmed,
                destination=self.identity,
            )
        counts = self.counts
        counts.cancelled += len(confirmed)
        counts.skipped += len(skipped)
        if confirmed:
            log.info(
                "run %s: sent as cancelled to %s (no longer in the ERP): %s",
                self.run_id,
                name,
                _named(confirmed),
            )
        for order_id, reason in skipped.items():
            self.emit(ItemSkipped(self.run_id, order_id, reason))
        self.emit(
            BatchFinished(
                self.run_id,
                self._batch_no,
                len(changes),
                len(confirmed),
                counts.read,
                None,
                counts.as_dict(),
            )
        )
        if counts.skipped > self.skip_budget:
            raise SkipBudgetExceededError(
                f"{counts.skipped} orders skipped, more than max_items_to_skip = {self.skip_budget}"
            )

    def _log_forgotten(
        self, forgotten: list[str], invoiced: set[str], unsendable: list[str]
    ) -> None:
        if not forgotten:
            return
        log.info(
            "run %s: %s exported %s no longer in the ERP, forgotten (the destination keeps them)",
            self.run_id,
            len(forgotten),
            "order is" if len(forgotten) == 1 else "orders are",
        )
        if invoiced:
            log.info("run %s: invoiced, not cancelled: %s", self.run_id, _named(sorted(invoiced)))
        if unsendable:
            log.warning(
                "run %s: no longer in the ERP, but not sent as cancelled (no document kept:"
                " exported before this version kept them): %s",
                self.run_id,
                _named(unsendable),
            )


async def still_listed(source: OrderSource, order_ids: Sequence[str]) -> set[str]:
    """Those of these ids the ERP still has, looked up by id whatever their date (an order
    whose date moved out of the window left the window, it was not cancelled); none where
    the source cannot look orders up."""
    if not order_ids:
        return set()
    found = await lookup_orders(source, order_ids)
    if found is None:
        return set()
    return {order_id for order_id, doc in found.items() if doc is not None}


def _named(order_ids: Sequence[str]) -> str:
    shown = ", ".join(order_ids[:_IDS_LOGGED])
    more = len(order_ids) - _IDS_LOGGED
    return shown + (f" and {more} more" if more > 0 else "")
