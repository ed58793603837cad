"""Delivers the real-time events queued by the intake, oldest first.

An order-completed event is upserted as it came (with a payment status from a callback
applied); a payment status is applied to the document the destination last confirmed, or held
until the order is known (a run or a later event sends the order with it). What the
destination confirms is recorded like a run's batch, so the next scheduled run does not send
the order again unless it changed. While the destination is unreachable the queue waits, in
order, and delivery resumes when it answers again.

Delivery never dies of an error: an ERP that cannot be read for a lookup (a broken demo file,
a Business Central outage) or a state database that cannot be written makes that event wait,
with backoff, while the others go on; an event this version cannot handle at all is skipped
with the reason. While any event waits on an error, `health()` says "failing" with that error,
and `DeliveryStateChanged` tells the dashboard when that starts and ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from order_export_tui.destinations.base import Destination, DestinationError, OrderChange
from order_export_tui.orders import content_hash, order_problem
from order_export_tui.service.delivery_health import DeliveryHealth
from order_export_tui.service.events import (
    EventDelivered,
    EventHeld,
    EventQueued,
    EventRetried,
    EventSkipped,
    EventSuperseded,
    RealtimeActivity,
)
from order_export_tui.settings import Settings, destination_identity
from order_export_tui.sources.base import OrderSource, fetch_order
from order_export_tui.state import (
    DELIVERED,
    HELD,
    ORDER_COMPLETED,
    SKIPPED,
    SUPERSEDED,
    WEBHOOK_PAYLOAD_RETENTION_DAYS,
    ExportedOrder,
    RealtimeEvent,
    StateStore,
    StateWriteError,
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
UPKEEP_EVERY_SECONDS = 60.0  # expiring held events, pruning old payloads

# Errors that make an event wait and be tried again: the destination or the ERP did not
# answer, or the state database could not record the outcome.
_DESTINATION_ERRORS = (RetriesExhaustedError, DestinationError, TransientError, OSError)
# Any failure of the ERP lookup: a source reports outages in its own ways.
_LOOKUP_ERRORS = (Exception,)

_DONE, _UNREACHABLE, _DEFERRED = "done", "unreachable", "deferred"


class _LookupFailedError(Exception):
    """The ERP could not be read for the order a payment status is for."""


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
        self._reopen = False  # the destination settings changed: reopen it when idle
        self._health = DeliveryHealth(emit, clock)
        # When an event deferred by an error is tried again (monotonic time).
        self._not_before: dict[int, float] = {}
        # Whose confirmations the state keeps: the destination the settings in force name.
        # An event queued before a switch goes to the destination open when it is delivered.
        self._identity = destination_identity(settings).identity

    @property
    def delivery_state(self) -> str:
        return self._health.state

    @property
    def last_error(self) -> str | None:
        return self._health.last_error

    def health(self) -> dict[str, object]:
        """What `/healthz` shows of delivery: states and counts, never the error text."""
        return self._health.health()

    def apply_settings(self, settings: Settings, *, reopen_destination: bool) -> None:
        """New settings for the next events; with `reopen_destination`, the destination is
        closed once the events in flight are done and opened again from the new settings."""
        self.settings = settings
        if reopen_destination:
            self._reopen = True
            self._wake.set()

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
        destination: Destination | None = None
        in_flight: dict[int, tuple[str, asyncio.Task[str]]] = {}
        outages = 0
        unreachable = False
        next_upkeep = 0.0
        try:
            while not (self._stopping and not in_flight):
                if time.monotonic() >= next_upkeep:
                    self._upkeep()
                    next_upkeep = time.monotonic() + UPKEEP_EVERY_SECONDS
                if not in_flight and not self._stopping and (destination is None or self._reopen):
                    destination = await self._open_destination(destination)
                    if destination is None:
                        unreachable = True
                if (
                    destination is not None
                    and not unreachable
                    and not self._stopping
                    and not self._reopen
                ):
                    self._dispatch_safely(in_flight, destination)
                if not in_flight:
                    if unreachable:  # every event in flight failed: wait out the outage
                        backoff = self._outage_backoff
                        delay = backoff[min(outages, len(backoff) - 1)]
                        outages += 1
                        unreachable = False
                    else:
                        delay = self._idle_delay()
                    self._wake.clear()
                    if not self._stopping:
                        await _wait(self._wake, delay)
                    continue
                for outcome in await self._next_finished(in_flight):
                    if outcome == _DONE:
                        outages = 0
                    elif outcome == _UNREACHABLE:
                        unreachable = True
        finally:
            for _, task in in_flight.values():
                task.cancel()
            if destination is not None:
                await _close_quietly(destination)

    async def _open_destination(self, current: Destination | None) -> Destination | None:
        """The destination for the settings in force, opened; None (and failing) when it
        cannot be opened: delivery tries again after a backoff."""
        if current is not None:
            await _close_quietly(current)
        self._reopen = False
        app = self.settings.destination.app
        self._identity = destination_identity(self.settings).identity
        destination: Destination | None = None
        try:
            destination = self._destination_factory(self.settings)
            await destination.open()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if destination is not None:
                await _close_quietly(destination)
            self._health.set_destination_error(f"cannot open the destination {app}: {error}")
            return None
        self._health.set_destination_error(None)
        return destination

    def _idle_delay(self) -> float:
        if not self._not_before:
            return 60.0
        return max(0.05, min(60.0, min(self._not_before.values()) - time.monotonic()))

    def _dispatch_safely(
        self, in_flight: dict[int, tuple[str, asyncio.Task[str]]], destination: Destination
    ) -> None:
        try:
            self._dispatch(in_flight, destination)
        except Exception as error:  # the state database could not be read
            log.error("real-time delivery cannot read its queue: %s", error)
            self._health.note_failure(-1, f"cannot read the queue: {error}")
            self._not_before[-1] = time.monotonic() + self._outage_backoff[-1]

    def _dispatch(
        self,
        in_flight: dict[int, tuple[str, asyncio.Task[str]]],
        destination: Destination,
    ) -> None:
        """Start the oldest queued events whose order has no earlier event still pending."""
        if len(in_flight) >= DELIVERY_CONCURRENCY:
            return
        now = time.monotonic()
        if self._not_before.get(-1, 0.0) > now:
            return  # the queue could not be read a moment ago
        if self._not_before.pop(-1, None) is not None:
            self._health.clear_failure(-1)
        waiting_orders = {order_id for order_id, _ in in_flight.values()}
        window = len(in_flight) + len(self._not_before) + DELIVERY_CONCURRENCY * 4
        for event in self.state.queued_events(limit=window):
            if event.event_id in in_flight:
                continue
            if event.order_id in waiting_orders:
                continue  # an earlier event of this order comes first
            if self._not_before.get(event.event_id, 0.0) > now:
                waiting_orders.add(event.order_id)  # it waits out an error; so do later ones
                continue
            waiting_orders.add(event.order_id)
            task = asyncio.ensure_future(self._deliver(event, destination))
            in_flight[event.event_id] = (event.order_id, task)
            if len(in_flight) >= DELIVERY_CONCURRENCY:
                return

    async def _next_finished(
        self, in_flight: dict[int, tuple[str, asyncio.Task[str]]]
    ) -> list[str]:
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
                try:
                    outcomes.append(task.result())
                except Exception:  # _deliver handles its errors; this is a last guard
                    log.exception("delivering event %s failed", event_id)
                    outcomes.append(_UNREACHABLE)
        return outcomes

    async def _deliver(self, event: RealtimeEvent, destination: Destination) -> str:
        """Handle one event, whatever goes wrong: `_DONE` (delivered, held or skipped),
        `_UNREACHABLE` (the destination did not take it: every event waits) or `_DEFERRED`
        (the ERP or the state database failed for it: it waits, the others go on)."""
        try:
            outcome = await self._handle(event, destination)
        except asyncio.CancelledError:
            raise
        except _LookupFailedError as error:
            return self._defer(event, str(error))
        except StateWriteError as error:
            return self._defer(event, str(error))
        except sqlite3.Error as error:  # the state database could not be read
            return self._defer(event, f"cannot read the state database: {error}")
        except _DESTINATION_ERRORS as error:
            self._wait(event, str(error))
            return _UNREACHABLE
        except Exception as error:
            # Not an outage but an event this version cannot handle: waiting would not help.
            log.exception("event %s for %s cannot be delivered", event.event_id, event.order_id)
            reason = f"cannot be delivered: {type(error).__name__}: {error}"
            try:
                self._skip(event, event.order_id, reason)
            except StateWriteError as write_error:
                return self._defer(event, str(write_error))
            return _DONE
        self._health.clear_failure(event.event_id)
        self._not_before.pop(event.event_id, None)
        return outcome

    async def _handle(self, event: RealtimeEvent, destination: Destination) -> str:
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
                return _DONE
            known = await self._known_document(event)
            if known is None:
                self.state.finish_event(event.event_id, status=HELD, now=self._clock())
                self._emit(EventHeld(event.event_id, event.order_id))
                return _DONE
            doc = {**known, "payment_status": payload["payment_status"]}
        return await self._send(event, doc, destination)

    def _wait(self, event: RealtimeEvent, error: str) -> None:
        """The event stays queued: note the attempt and its error, and say delivery fails."""
        self._health.note_failure(event.event_id, error)
        try:
            self.state.note_event_attempt(event.event_id, error)
        except StateWriteError as write_error:
            log.error("event %s: attempt not recorded: %s", event.event_id, write_error)
        self._emit(EventRetried(event.event_id, error))

    def _defer(self, event: RealtimeEvent, error: str) -> str:
        self._wait(event, error)
        backoff = self._outage_backoff
        delay = backoff[min(event.attempts, len(backoff) - 1)]
        self._not_before[event.event_id] = time.monotonic() + delay
        return _DEFERRED

    async def _known_document(self, event: RealtimeEvent) -> dict[str, Any] | None:
        """The order as last sent in real time, else as the ERP has it now if a run has
        exported it; None while the order is unknown (the payment status is then held)."""
        stored = self.state.exported_document(event.order_id, destination=self._identity)
        if stored is not None:
            return orjson.loads(stored)  # type: ignore[no-any-return]
        known = self.state.exported_orders([event.order_id], destination=self._identity)
        if self._source_factory is None or not known:
            return None
        what = f"cannot read the ERP for {event.order_id}"
        try:
            source = self._source_factory(self.settings, self._retrier(event))
        except _LOOKUP_ERRORS as error:
            raise _LookupFailedError(f"{what}: {error}") from error
        try:
            return await fetch_order(source, event.order_id)
        except _LOOKUP_ERRORS as error:
            raise _LookupFailedError(f"{what}: {error}") from error
        finally:
            with contextlib.suppress(Exception):
                await source.close()

    def _with_payment_override(self, doc: dict[str, Any]) -> dict[str, Any]:
        override = self.state.payment_overrides([doc["order_id"]]).get(doc["order_id"])
        return doc if override is None else {**doc, "payment_status": override}

    async def _send(
        self, event: RealtimeEvent, doc: dict[str, Any], destination: Destination
    ) -> str:
        order_id = doc["order_id"]
        problem = order_problem(doc)
        if problem is not None:
            self._skip(event, order_id, f"invalid order: {problem}")
            return _DONE
        digest = content_hash(doc)
        previous = self.state.exported_orders([order_id], destination=self._identity).get(order_id)
        if previous is not None and previous.content_hash == digest:
            # The destination has it already; the order date is noted if not known yet.
            self._delivered(event, order_id, sent=None, order_date=doc["order_date"])
            return _DONE
        change = OrderChange(doc, "new" if previous is None else "updated", previous)
        self.state.note_send_started(event.event_id, self._clock())
        try:
            refusal = await destination.send_one(change, self._retrier(event))
        except (asyncio.CancelledError, *_DESTINATION_ERRORS):
            raise
        except Exception as error:  # any failure of the destination makes the event wait
            raise DestinationError(
                f"{destination.name}: {type(error).__name__}: {error}"
            ) from error
        if refusal is not None:
            self._skip(event, order_id, f"rejected by {destination.name}: {refusal}")
            return _DONE
        self._delivered(
            event,
            order_id,
            sent=ExportedOrder(
                order_id,
                digest,
                doc["shipping_status"],
                doc["payment_status"],
                orjson.dumps(doc),
                doc["order_date"],
                doc["customer"]["email"],
            ),
        )
        return _DONE

    def _retrier(self, event: RealtimeEvent) -> Retrier:
        task = self.settings.task

        def on_retry(what: str, retry: int, delay: float, error: TransientError) -> None:
            self._emit(EventRetried(event.event_id, str(error)))

        return Retrier(
            RetryPolicy(task.max_retries, task.max_retry_interval_seconds),
            on_retry=on_retry,
            sleep=self._sleep,
        )

    def _delivered(
        self,
        event: RealtimeEvent,
        order_id: str,
        sent: ExportedOrder | None,
        order_date: str | None = None,
    ) -> None:
        now = self._clock()
        # Recorded before the event is closed: a crash in between repeats nothing, because
        # the redelivered event then finds the same content hash.
        self.state.record_batch(
            run_id=None,
            now=now,
            exported=[] if sent is None else [sent],
            skipped={},
            resolved=[order_id],
            seen=None if order_date is None else {order_id: order_date},
            destination=self._identity,
        )
        self.state.finish_event(event.event_id, status=DELIVERED, now=now)
        latency = (now - datetime.fromisoformat(event.received_at)).total_seconds()
        resent = sent is not None and event.send_started_at is not None
        self._emit(
            EventDelivered(event.event_id, order_id, event.kind, latency, sent is not None, resent)
        )

    def _skip(self, event: RealtimeEvent, order_id: str, reason: str) -> None:
        now = self._clock()
        self.state.record_batch(
            run_id=None, now=now, exported=[], skipped={order_id: reason}, resolved=[]
        )
        self.state.finish_event(event.event_id, status=SKIPPED, now=now, error=reason)
        self._emit(EventSkipped(event.event_id, order_id, reason))

    def _upkeep(self) -> None:
        """Expire held payment statuses; blank the payloads of events finished long ago."""
        now = self._clock()
        try:
            older_than = now - timedelta(days=self.settings.task.max_days_to_export)
            if self.state.expire_held_events(older_than=older_than, now=now):
                log.warning("payment statuses held for orders that never arrived have expired")
            retention = timedelta(days=WEBHOOK_PAYLOAD_RETENTION_DAYS)
            pruned = self.state.prune_event_payloads(older_than=now - retention)
            if pruned:
                log.info("removed the payloads of %s events delivered long ago", pruned)
        except StateWriteError as error:
            log.error("real-time upkeep not done, tried again later: %s", error)


async def _close_quietly(destination: Destination) -> None:
    try:
        await destination.close()
    except Exception as error:
        log.warning("closing the destination %s failed: %s", destination.name, error)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
