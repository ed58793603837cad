"""The real-time queue: webhook events accepted for delivery, what became of each, their
tally by state, and the payment statuses callbacks set."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from order_export_tui.state.backend import StateConnection

# Webhook payloads (order documents: names, e-mail and postal addresses) of events that are
# finished (delivered, skipped, expired) are blanked this long after they finished. The event's
# row stays, so a repeat of it is still recognised and answered with its first event_id.
WEBHOOK_PAYLOAD_RETENTION_DAYS = 7

# Real-time event kinds and states.
ORDER_COMPLETED = "order_completed"
PAYMENT_STATUS = "payment_status"
QUEUED = "queued"  # waiting for delivery
HELD = "held"  # a payment status for an order not known yet
DELIVERED = "delivered"
SUPERSEDED = "superseded"  # a payment status older than the one already applied: no effect
SKIPPED = "skipped"
EXPIRED = "expired"  # held longer than max_days_to_export


@dataclass(frozen=True, slots=True)
class RealtimeEvent:
    """An event waiting for delivery, with its payload."""

    event_id: int
    kind: str
    order_id: str
    payload: bytes
    received_at: str
    attempts: int
    # When an earlier attempt began sending it (None: never): the destination may have it
    # already, from a process that died before it could record the answer.
    send_started_at: str | None = None


@dataclass(frozen=True, slots=True)
class RealtimeEventRow:
    """What became of one accepted webhook event, without its payload (customer data)."""

    event_id: int
    kind: str  # ORDER_COMPLETED | PAYMENT_STATUS
    order_id: str
    received_at: str
    status: str  # QUEUED | HELD | DELIVERED | SUPERSEDED | SKIPPED | EXPIRED
    attempts: int
    last_error: str | None
    finished_at: str | None


class RealtimeQueue:
    """The `realtime_event`, `realtime_tally` and `payment_override` tables."""

    def __init__(self, db: StateConnection) -> None:
        self._db = db

    def enqueue_event(
        self, *, kind: str, order_id: str, payload: bytes, dedupe_key: str, now: datetime
    ) -> tuple[int, bool]:
        """Commit an accepted event; (event_id, True) or, for an exact repeat, the first
        event's id and False."""
        with self._db.transaction() as db:
            inserted = db.execute(
                "INSERT INTO realtime_event (kind, order_id, payload, dedupe_key,"
                " received_at, status) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (dedupe_key) DO NOTHING RETURNING event_id",
                (kind, order_id, payload, dedupe_key, now.isoformat(), QUEUED),
            ).fetchall()
            if inserted:
                return int(inserted[0][0]), True
            row = db.execute(
                "SELECT event_id FROM realtime_event WHERE dedupe_key = ?", (dedupe_key,)
            ).fetchone()
            return int(row[0]), False

    def queued_events(self, limit: int) -> list[RealtimeEvent]:
        """The oldest events waiting for delivery, in the order they were accepted."""
        rows = self._db.execute(
            "SELECT event_id, kind, order_id, payload, received_at, attempts, send_started_at"
            " FROM realtime_event WHERE status = ? ORDER BY event_id LIMIT ?",
            (QUEUED, limit),
        )
        return [RealtimeEvent(*row) for row in rows]

    def finish_event(
        self, event_id: int, *, status: str, now: datetime, error: str | None = None
    ) -> None:
        with self._db.transaction() as db:
            db.execute(
                "UPDATE realtime_event SET status = ?, finished_at = ?, last_error = ?,"
                " attempts = attempts + 1 WHERE event_id = ?",
                (status, now.isoformat(), error, event_id),
            )

    def note_send_started(self, event_id: int, now: datetime) -> None:
        """Say that a send of this event to the destination begins (committed before it)."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE realtime_event SET send_started_at = ? WHERE event_id = ?",
                (now.isoformat(), event_id),
            )

    def note_event_attempt(self, event_id: int, error: str) -> None:
        """A failed attempt, recorded: its send is over (the next one is no re-send)."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE realtime_event SET attempts = attempts + 1, last_error = ?,"
                " send_started_at = NULL WHERE event_id = ?",
                (error, event_id),
            )

    def deliver_held(self, order_ids: Iterable[str], *, stamp: str) -> None:
        """The payment statuses held for these orders are applied now (the orders were
        exported at `stamp`): their events are done."""
        if not self._has_held_events():
            return
        with self._db.transaction() as db:
            db.executemany(
                "UPDATE realtime_event SET status = ?, finished_at = ?"
                " WHERE status = ? AND order_id = ?",
                [(DELIVERED, stamp, HELD, order_id) for order_id in order_ids],
            )

    def _has_held_events(self) -> bool:
        row = self._db.execute("SELECT 1 FROM realtime_event WHERE status = ? LIMIT 1", (HELD,))
        return row.fetchone() is not None

    def oldest_queued_event_at(self) -> str | None:
        """When the oldest event still waiting for delivery was accepted (ISO 8601)."""
        row = self._db.execute(
            "SELECT received_at FROM realtime_event WHERE status = ? ORDER BY event_id LIMIT 1",
            (QUEUED,),
        ).fetchone()
        return None if row is None else str(row[0])

    def recent_events(self, limit: int = 200) -> list[RealtimeEventRow]:
        """The newest accepted events first, whatever became of them."""
        rows = self._db.execute(
            "SELECT event_id, kind, order_id, received_at, status, attempts, last_error,"
            " finished_at FROM realtime_event ORDER BY event_id DESC LIMIT ?",
            (limit,),
        )
        return [RealtimeEventRow(*row) for row in rows]

    def event_counts(self) -> dict[str, int]:
        """How many real-time events are in each state (kept by triggers: no count here)."""
        rows = self._db.execute("SELECT status, events FROM realtime_tally WHERE events > 0")
        return {status: count for status, count in rows}

    def set_payment_override(
        self, order_id: str, payment_status: str, *, occurred_at: str, now: datetime
    ) -> bool:
        """Remember a payment callback's status: it wins over the ERP's for this order.

        Callbacks can arrive out of order: one that happened before the status already held
        for the order changes nothing (False). Times are compared as instants, never as
        strings (10:00+00:00 is after 11:30+02:00)."""
        moment = datetime.fromisoformat(occurred_at)
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT occurred_at FROM payment_override WHERE order_id = ?", (order_id,)
            ).fetchone()
            if row is not None and moment < datetime.fromisoformat(row[0]):
                return False
            db.execute(
                "INSERT INTO payment_override (order_id, payment_status, occurred_at,"
                " received_at) VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET"
                " payment_status = excluded.payment_status, occurred_at = excluded.occurred_at,"
                " received_at = excluded.received_at",
                (order_id, payment_status, occurred_at, now.isoformat()),
            )
        return True

    def payment_overrides(self, order_ids: Sequence[str]) -> dict[str, str]:
        """Payment statuses from callbacks for these orders (usually none)."""
        if (
            not order_ids
            or self._db.execute("SELECT 1 FROM payment_override LIMIT 1").fetchone() is None
        ):
            return {}
        rows = self._db.rows_for_ids(
            "SELECT order_id, payment_status FROM payment_override", order_ids
        )
        return {order_id: status for order_id, status in rows}

    def expire_held_events(self, *, older_than: datetime, now: datetime) -> int:
        """Give up on payment statuses held longer than the export window."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE realtime_event SET status = ?, finished_at = ?, last_error = ?"
                " WHERE status = ? AND received_at < ?",
                (EXPIRED, now.isoformat(), "the order never arrived", HELD, older_than.isoformat()),
            )
            db.execute(
                "DELETE FROM payment_override WHERE received_at < ?"
                " AND order_id NOT IN (SELECT order_id FROM exported_order)",
                (older_than.isoformat(),),
            )
        return cursor.rowcount

    def prune_event_payloads(self, *, older_than: datetime) -> int:
        """Blank the payloads of events that finished before `older_than` (they hold customer
        data and are needed no more); returns how many were blanked."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE realtime_event SET payload = ? WHERE status IN (?, ?, ?)"
                " AND finished_at < ? AND length(payload) > 0",
                (b"", DELIVERED, SKIPPED, EXPIRED, older_than.isoformat()),
            )
        return cursor.rowcount
