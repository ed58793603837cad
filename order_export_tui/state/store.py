"""`StateStore`: the state database as one object, composed of its aggregates.

Each aggregate (exported orders, runs, skipped orders, the real-time queue) is its own class
over the one connection and reachable as an attribute (`state.runs`, ...); the store keeps
the methods callers have always used and the one write that spans aggregates, a batch's
outcome (`record_batch`).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from order_export_tui.state.backend import StateConnection
from order_export_tui.state.exported import ExportedOrder, ExportedOrders
from order_export_tui.state.location import StateLocation
from order_export_tui.state.opening import open_database
from order_export_tui.state.realtime import RealtimeEvent, RealtimeEventRow, RealtimeQueue
from order_export_tui.state.runs import RunRow, Runs
from order_export_tui.state.skipped import SkippedOrderRow, SkippedOrders
from order_export_tui.state.verifies import Verifies


class StateStore:
    """Access to the state database. Not thread-safe: use it from one thread."""

    def __init__(self, location: StateLocation, *, durable: bool = False) -> None:
        """`location`: a SQLite file's path, or a `PostgresLocation` (`state_location`).
        `durable`: every commit reaches the disk before it returns (see `Database`)."""
        self.path = location
        self._db = open_database(location, durable=durable)
        self.exported = ExportedOrders(self._db)
        self.runs = Runs(self._db)
        self.skipped = SkippedOrders(self._db)
        self.realtime = RealtimeQueue(self._db)
        self.verifies = Verifies(self._db)

    def close(self) -> None:
        self._db.close()

    @property
    def destination(self) -> str:
        """The destination identity whose exported orders a call given none works on."""
        return self.exported.destination

    def use_destination(self, destination: str) -> None:
        """Work on this destination's exported orders by default; the rows a migration left
        to no destination become its own (`ExportedOrders.use_destination`)."""
        self.exported.use_destination(destination)

    def transaction(self) -> AbstractContextManager[StateConnection]:
        """One write transaction (`Database.transaction`): what the aggregates write in it
        is committed together."""
        return self._db.transaction()

    def record_batch(
        self,
        *,
        run_id: int | None,
        now: datetime,
        exported: Iterable[ExportedOrder],
        skipped: dict[str, str],
        resolved: Iterable[str],
        seen: dict[str, str] | None = None,
        destination: str | None = None,
    ) -> None:
        """Record one batch's outcome in one transaction (`destination`: whose confirmation
        it is; None: the store's).

        `exported`: orders the destination confirmed; `skipped`: order id -> reason;
        `resolved`: orders that need no export (unchanged), whose old skip is void.
        `seen`: order id -> order date of unchanged orders as read, written where the state
        does not know the date yet (rows from before it kept them).
        Payment statuses held for exported orders are now applied: their events are done.
        """
        stamp = now.isoformat()
        confirmed = list(exported)
        sent_ids = [order.order_id for order in confirmed]
        cleared = [*resolved, *sent_ids]
        with self._db.transaction():
            self.exported.record(
                confirmed, run_id=run_id, stamp=stamp, seen=seen, destination=destination
            )
            if sent_ids:
                self.realtime.deliver_held(sent_ids, stamp=stamp)
            if cleared:
                self.skipped.forget_skipped(cleared)
            if skipped:
                self.skipped.record_skipped(skipped, stamp=stamp, run_id=run_id)

    # --- exported orders (`ExportedOrders`) ---------------------------------------------

    def exported_orders(
        self, order_ids: Sequence[str], *, destination: str | None = None
    ) -> dict[str, ExportedOrder]:
        return self.exported.exported_orders(order_ids, destination=destination)

    def confirmed_hashes(
        self, order_ids: Sequence[str], *, destination: str | None = None
    ) -> dict[str, str]:
        return self.exported.confirmed_hashes(order_ids, destination=destination)

    def exported_document(self, order_id: str, *, destination: str | None = None) -> bytes | None:
        return self.exported.exported_document(order_id, destination=destination)

    def confirmed_document(self, order_id: str, *, destination: str | None = None) -> bytes | None:
        return self.exported.confirmed_document(order_id, destination=destination)

    def exported_count(
        self, since: datetime | None = None, *, destination: str | None = None
    ) -> int:
        return self.exported.exported_count(since, destination=destination)

    def forget_unread(
        self,
        *,
        since: datetime,
        started_at: datetime,
        read: Container[str],
        destination: str | None = None,
    ) -> int:
        return self.exported.forget_unread(
            since=since, started_at=started_at, read=read, destination=destination
        )

    def gone_unread(
        self,
        *,
        since: datetime,
        started_at: datetime,
        read: Container[str],
        destination: str | None = None,
    ) -> list[ExportedOrder]:
        return self.exported.gone_unread(
            since=since, started_at=started_at, read=read, destination=destination
        )

    def forget_exported(self, order_ids: Sequence[str], *, destination: str | None = None) -> int:
        return self.exported.forget(order_ids, destination=destination)

    # --- real-time events (`RealtimeQueue`) ---------------------------------------------

    def enqueue_event(
        self, *, kind: str, order_id: str, payload: bytes, dedupe_key: str, now: datetime
    ) -> tuple[int, bool]:
        return self.realtime.enqueue_event(
            kind=kind, order_id=order_id, payload=payload, dedupe_key=dedupe_key, now=now
        )

    def queued_events(self, limit: int) -> list[RealtimeEvent]:
        return self.realtime.queued_events(limit)

    def finish_event(
        self, event_id: int, *, status: str, now: datetime, error: str | None = None
    ) -> None:
        self.realtime.finish_event(event_id, status=status, now=now, error=error)

    def note_event_attempt(self, event_id: int, error: str) -> None:
        self.realtime.note_event_attempt(event_id, error)

    def note_send_started(self, event_id: int, now: datetime) -> None:
        self.realtime.note_send_started(event_id, now)

    def oldest_queued_event_at(self) -> str | None:
        return self.realtime.oldest_queued_event_at()

    def recent_events(self, limit: int = 200) -> list[RealtimeEventRow]:
        return self.realtime.recent_events(limit)

    def event_counts(self) -> dict[str, int]:
        return self.realtime.event_counts()

    def set_payment_override(
        self, order_id: str, payment_status: str, *, occurred_at: str, now: datetime
    ) -> bool:
        return self.realtime.set_payment_override(
            order_id, payment_status, occurred_at=occurred_at, now=now
        )

    def payment_overrides(self, order_ids: Sequence[str]) -> dict[str, str]:
        return self.realtime.payment_overrides(order_ids)

    def expire_held_events(self, *, older_than: datetime, now: datetime) -> int:
        return self.realtime.expire_held_events(older_than=older_than, now=now)

    def prune_event_payloads(self, *, older_than: datetime) -> int:
        return self.realtime.prune_event_payloads(older_than=older_than)

    # --- skipped orders (`SkippedOrders`) -----------------------------------------------

    def skipped_count(self) -> int:
        return self.skipped.skipped_count()

    def skipped_orders(self, limit: int | None = None) -> list[SkippedOrderRow]:
        return self.skipped.skipped_orders(limit)

    def skipped_order_ids(self, order_ids: Sequence[str] | None = None) -> list[str]:
        return self.skipped.skipped_order_ids(order_ids)

    def forget_skipped(self, order_ids: Iterable[str]) -> None:
        self.skipped.forget_skipped(order_ids)

    # --- runs and run requests that were not honoured (`Runs`) ---------------------------

    def record_skipped_tick(self, *, at: datetime, trigger: str, reason: str) -> None:
        self.runs.record_skipped_tick(at=at, trigger=trigger, reason=reason)

    def skipped_ticks(self, limit: int = 50) -> list[tuple[str, str, str]]:
        return self.runs.skipped_ticks(limit)

    def start_run(self, *, trigger: str, started_at: datetime) -> int:
        return self.runs.start_run(trigger=trigger, started_at=started_at)

    def set_run_log_file(self, run_id: int, log_file: str) -> None:
        self.runs.set_run_log_file(run_id, log_file)

    def finish_run(
        self,
        run_id: int,
        *,
        finished_at: datetime,
        outcome: str,
        counts: dict[str, int],
        error: str | None,
    ) -> None:
        self.runs.finish_run(
            run_id, finished_at=finished_at, outcome=outcome, counts=counts, error=error
        )

    def close_interrupted_runs(self, now: datetime) -> int:
        return self.runs.close_interrupted_runs(now)

    def last_finished_run(self) -> RunRow | None:
        return self.runs.last_finished_run()

    def last_success_at(self) -> str | None:
        return self.runs.last_success_at()

    def recent_runs(self, limit: int = 50, *, finished: bool = False) -> list[RunRow]:
        return self.runs.recent_runs(limit, finished=finished)
