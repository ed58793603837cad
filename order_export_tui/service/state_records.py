"""The state database's rows as the control interface's records (service.records).

Each field is named here on both sides: a column the state renames changes this module, never
what an attached dashboard receives. A kind or state this version does not know passes as it
is (the dashboard shows it) rather than failing the whole list.
"""

from __future__ import annotations

from order_export_tui.service import records
from order_export_tui.state import (
    COUNT_NAMES,
    DELIVERED,
    EXPIRED,
    HELD,
    ORDER_COMPLETED,
    PAYMENT_STATUS,
    QUEUED,
    SKIPPED,
    SUPERSEDED,
    RealtimeEventRow,
    RunRow,
    SkippedOrderRow,
)

_KINDS = {
    ORDER_COMPLETED: records.ORDER_COMPLETED,
    PAYMENT_STATUS: records.PAYMENT_STATUS,
}
_STATUSES = {
    QUEUED: records.QUEUED,
    HELD: records.HELD,
    DELIVERED: records.DELIVERED,
    SUPERSEDED: records.SUPERSEDED,
    SKIPPED: records.SKIPPED,
    EXPIRED: records.EXPIRED,
}
_COUNTS = dict(zip(COUNT_NAMES, records.COUNT_NAMES, strict=True))


def run_record(row: RunRow) -> records.RunRecord:
    return records.RunRecord(
        run_id=row.run_id,
        trigger=row.trigger,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=row.outcome,
        counts={_COUNTS[name]: count for name, count in row.counts.items()},
        error=row.error,
        log_file=row.log_file,
    )


def skipped_order(row: SkippedOrderRow) -> records.SkippedOrder:
    return records.SkippedOrder(
        order_id=row.order_id,
        reason=row.reason,
        attempts=row.attempts,
        first_skipped_at=row.first_skipped_at,
        last_tried_at=row.last_tried_at,
        run_id=row.run_id,
    )


def realtime_event_record(row: RealtimeEventRow) -> records.RealtimeEventRecord:
    return records.RealtimeEventRecord(
        event_id=row.event_id,
        kind=_KINDS.get(row.kind, row.kind),
        order_id=row.order_id,
        received_at=row.received_at,
        status=_STATUSES.get(row.status, row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        finished_at=row.finished_at,
    )
