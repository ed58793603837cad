"""What the control interface returns about runs, skipped orders and real-time events.

These are the transfer types of `ExportControl` (service.control): they cross the control
socket by class name and field (service.wire), so the protocol attached dashboards speak is
fixed here, not by the state database's rows. `state_records` converts the rows to them.
"""

from __future__ import annotations

from dataclasses import dataclass

# A run's counts, in the order the dashboard and the reports show them.
COUNT_NAMES = ("read", "new", "updated", "unchanged", "retried", "skipped", "cancelled")

# What a real-time event is (`RealtimeEventRecord.kind`) ...
ORDER_COMPLETED = "order_completed"
PAYMENT_STATUS = "payment_status"
# ... and what became of it (`RealtimeEventRecord.status`).
QUEUED = "queued"  # waiting for delivery
HELD = "held"  # a payment status for an order not known yet
DELIVERED = "delivered"
SUPERSEDED = "superseded"  # a payment status older than the one already applied: no effect
SKIPPED = "skipped"
EXPIRED = "expired"  # held longer than max_days_to_export


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of the history; `counts` by `COUNT_NAMES`."""

    run_id: int
    trigger: str
    started_at: str
    finished_at: str | None
    outcome: str
    counts: dict[str, int]
    error: str | None
    log_file: str | None


@dataclass(frozen=True, slots=True)
class SkippedOrder:
    """An order a run could not send: why, how often it was tried, by which run last."""

    order_id: str
    reason: str
    attempts: int
    first_skipped_at: str
    last_tried_at: str
    run_id: int | None


@dataclass(frozen=True, slots=True)
class RealtimeEventRecord:
    """What became of one accepted webhook event, without its payload (customer data)."""

    event_id: int
    kind: str  # ORDER_COMPLETED | PAYMENT_STATUS
    order_id: str
    received_at: str
    status: str  # QUEUED | HELD | DELIVERED | SUPERSEDED | SKIPPED | EXPIRED
    attempts: int
    last_error: str | None
    finished_at: str | None
