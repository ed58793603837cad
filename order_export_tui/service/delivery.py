"""Delivers the real-time events queued by the intake, oldest first.

An order-completed event is upserted as it came (with a payment status from a callback
applied); a payment status is applied to the document the destination last confirmed, or held
until the order is known (a run or a later event sends the order with it). What the
destination confirms is recorded like a run's batch, so the next scheduled run does not send
the order again unless it changed. While the destination is unreachable the queue waits, in
order, and delivery resumes when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from order_export_tui.destinations.base import Destination, DestinationError, OrderChange
from order_export_tui.orders import content_hash, order_problem
from order_export_tui.settings import Settings
from order_export_tui.sources.base import OrderSource, SourceError, fetch_order
from order_export_tui.state import (
    DELIVERED,
    HELD,
    ORDER_COMPLETED,
    SKIPPED,
    SUPERSEDED,
    ExportedOrder,
    RealtimeEvent,
    StateStore,
)
from order_export_tui.transport.retry import (
    Retrier,
    RetriesExhaustedError,
    RetryPolicy,
    TransientError,
)

log = logging.getLogger("order_export.delivery")

DELIVERY_CONCURRENCY = 8  # events in flight at once (a destination may allow fewer)
# How long delivery waits before trying a destination that was unreachable again.
OUTAGE_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class EventQueued:
    event_id: int


@dataclass(frozen=True, slots=True)
class EventDelivered:
    event_id: int
    order_id: str
    kind: str
    latency_seconds: float  # from acceptance to the destination's confirmation
    sent: bool = True  # False: the destination already had this very document


@dataclass(frozen=True, slots=True)
class EventRetried:
    event_id: int
    error: str


@dataclass(frozen=True, slots=True)
class EventSkipped:
    event_id: int
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class EventHeld:
    event_id: int
    order_id: str


@dataclass(frozen=True, slots=True)
class EventSuperseded:
    """A payment callback older than the status already applied: recorded, no effect."""

    event_id: int
    order_id: str


RealtimeActivity = (
    EventQueued | EventDelivered | EventRetried | EventSkipped | EventHeld | EventSuperseded
)


class RealtimeDelivery:
    def __init__(
        self,
        settings: Settings,
        state: StateStore,
        destination_factory: Callable[[Settings], Destination],
        *,
        source_factory: Callable[[Settings, Retrier], OrderSource] | None = None,
        emit: Callable[[RealtimeActivity], None],
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        outage_backoff: Sequence[float] = OUTAGE_BACKOFF_SECONDS,
    ) -> None:
        self.settings = settings
        self._outage_backoff = outage_backoff
        self.state = state
        self._destination_factory = destination_factory
        self._source_factory = source_factory
        self._emit = emit
        self._clock = clock
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._stopping = False
        self.last_error: str | None = None

    def wake(self, event_id: int | None = None) -> None:
        if event_id is not None:
            self._emit(EventQueued(event_id))
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Deliver until `stop()`; the events in flight are finished first.

        Up to `DELIVERY_CONCURRENCY` events travel at once, never two of the same order: an
        order's events go one after the other, in the order they were accepted.
        """
        destination = self._destination_factory(self.settings)
        await destination.open()
        in_flight: dict[int, tuple[str, asyncio.Task[bool]]] = {}
        outages = 0
        unreachable = False
        next_expiry = 0.0
        try:
            while not (self._stopping and not in_flight):
                if time.monotonic() >= next_expiry:
                    self._expire_held()
                    next_expiry = time.monotonic() + 60
                if not unreachable and not self._stopping:
                    self._dispatch(in_flight, destination)
                if not in_flight:
                    if unreachable:  # every event in flight failed: wait out the outage
                        backoff = self._outage_backoff
                        delay = backoff[min(outages, len(backoff) - 1)]
                        outages += 1
                        unreachable = False
                    else:
                        delay = 60.0
                    self._wake.clear()
                    if not self._stopping:
                        await _wait(self._wake, delay)
                    continue
                for delivered in await self._next_finished(in_flight):
                    if delivered:
                        outages = 0
                    else:
                        unreachable = True
        finally:
            for _, task in in_flight.values():
                task.cancel()
            await destination.close()

    def _dispatch(
        self,
        in_flight: dict[int, tuple[str, asyncio.Task[bool]]],
        destination: Destination,
    ) -> None:
        """Start the oldest queued events whose order has no earlier event still pending."""
        if len(in_flight) >= DELIVERY_CONCURRENCY:
            return
        waiting_orders = {order_id for order_id, _ in in_flight.values()}
        window = len(in_flight) + DELIVERY_CONCURRENCY * 4
        for event in self.state.queued_events(limit=window):
            if event.event_id in in_flight:
                continue
            if event.order_id in waiting_orders:
                continue  # an earlier event of this order comes first
            waiting_orders.add(event.order_id)
            task = asyncio.ensure_future(self._deliver(event, destination))
            in_flight[event.event_id] = (event.order_id, task)
            if len(in_flight) >= DELIVERY_CONCURRENCY:
                return

    async def _next_finished(
        self, in_flight: dict[int, tuple[str, asyncio.Task[bool]]]
    ) -> list[bool]:
        """Wait until an event in flight is done (or new events arrive); their outcomes."""
        self._wake.clear()
        woken = asyncio.ensure_future(self._wake.wait())
        tasks = [task for _, task in in_flight.values()]
        await asyncio.wait([*tasks, woken], return_when=asyncio.FIRST_COMPLETED)
        woken.cancel()
        outcomes = []
        for event_id, (_, task) in list(in_flight.items()):
            if task.done():
                del in_flight[event_id]
                outcomes.append(task.result())
        return outcomes

    async def _deliver(self, event: RealtimeEvent, destination: Destination) -> bool:
        """Handle one event; False when the destination could not be reached (retry later)."""
        payload: dict[str, Any] = orjson.loads(event.payload)
        if event.kind == ORDER_COMPLETED:
            doc = self._with_payment_override(payload)
        else:
            applied = self.state.set_payment_override(
                event.order_id,
                payload["payment_status"],
                occurred_at=payload["occurred_at"],
                now=self._clock(),
            )
            if not applied:  # out of order: a later callback already said more
                self.state.finish_event(event.event_id, status=SUPERSEDED, now=self._clock())
                log.info(
                    "event %s for %s is older than the payment status applied: no change",
                    event.event_id,
                    event.order_id,
                )
                self._emit(EventSuperseded(event.event_id, event.order_id))
                return True
            try:
                known = await self._known_document(event)
            except (SourceError, RetriesExhaustedError, TransientError, OSError) as error:
                return self._not_yet(event, event.order_id, f"cannot read the ERP: {error}")
            if known is None:
                self.state.finish_event(event.event_id, status=HELD, now=self._clock())
                self._emit(EventHeld(event.event_id, event.order_id))
                return True
            doc = {**known, "payment_status": payload["payment_status"]}
        return await self._send(event, doc, destination)

    async def _known_document(self, event: RealtimeEvent) -> dict[str, Any] | None:
        """The order as last sent in real time, else as the ERP has it now if a run has
        exported it; None while the order is unknown (the payment status is then held)."""
        stored = self.state.exported_document(event.order_id)
        if stored is not None:
            return orjson.loads(stored)  # type: ignore[no-any-return]
        if self._source_factory is None or not self.state.exported_orders([event.order_id]):
            return None
        source = self._source_factory(self.settings, self._retrier(event))
        try:
            return await fetch_order(source, event.order_id)
        finally:
            await source.close()

    def _with_payment_override(self, doc: dict[str, Any]) -> dict[str, Any]:
        override = self.state.payment_overrides([doc["order_id"]]).get(doc["order_id"])
        return doc if override is None else {**doc, "payment_status": override}

    async def _send(
        self, event: RealtimeEvent, doc: dict[str, Any], destination: Destination
    ) -> bool:
        order_id = doc["order_id"]
        problem = order_problem(doc)
        if problem is not None:
            self._skip(event, order_id, f"invalid order: {problem}")
            return True
        digest = content_hash(doc)
        previous = self.state.exported_orders([order_id]).get(order_id)
        if previous is not None and previous.content_hash == digest:
            self._delivered(event, order_id, sent=None)  # the destination has it already
            return True
        change = OrderChange(doc, "new" if previous is None else "updated", previous)
        retrier = self._retrier(event)
        try:
            refusal = await destination.send_one(change, retrier)
        except (RetriesExhaustedError, DestinationError, TransientError, OSError) as error:
            return self._not_yet(event, order_id, str(error))
        if refusal is not None:
            self._skip(event, order_id, f"rejected by {destination.name}: {refusal}")
            return True
        self._delivered(
            event,
            order_id,
            sent=ExportedOrder(
                order_id,
                digest,
                doc["shipping_status"],
                doc["payment_status"],
                orjson.dumps(doc),
            ),
        )
        return True

    def _not_yet(self, event: RealtimeEvent, order_id: str, error: str) -> bool:
        """The event stays queued; delivery waits out the outage and tries it again."""
        self.last_error = error
        self.state.note_event_attempt(event.event_id, error)
        self._emit(EventRetried(event.event_id, error))
        return False

    def _retrier(self, event: RealtimeEvent) -> Retrier:
        task = self.settings.task

        def on_retry(what: str, retry: int, delay: float, error: TransientError) -> None:
            self._emit(EventRetried(event.event_id, str(error)))

        return Retrier(
            RetryPolicy(task.max_retries, task.max_retry_interval_seconds),
            on_retry=on_retry,
            sleep=self._sleep,
        )

    def _delivered(self, event: RealtimeEvent, order_id: str, sent: ExportedOrder | None) -> None:
        now = self._clock()
        # Recorded before the event is closed: a crash in between repeats nothing, because
        # the redelivered event then finds the same content hash.
        self.state.record_batch(
            run_id=None,
            now=now,
            exported=[] if sent is None else [sent],
            skipped={},
            resolved=[order_id],
        )
        self.state.finish_event(event.event_id, status=DELIVERED, now=now)
        self.last_error = None
        latency = (now - datetime.fromisoformat(event.received_at)).total_seconds()
        self._emit(EventDelivered(event.event_id, order_id, event.kind, latency, sent is not None))

    def _skip(self, event: RealtimeEvent, order_id: str, reason: str) -> None:
        now = self._clock()
        self.state.record_batch(
            run_id=None, now=now, exported=[], skipped={order_id: reason}, resolved=[]
        )
        self.state.finish_event(event.event_id, status=SKIPPED, now=now, error=reason)
        self._emit(EventSkipped(event.event_id, order_id, reason))

    def _expire_held(self) -> None:
        now = self._clock()
        older_than = now - timedelta(days=self.settings.task.max_days_to_export)
        if self.state.expire_held_events(older_than=older_than, now=now):
            log.warning("payment statuses held for orders that never arrived have expired")


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
