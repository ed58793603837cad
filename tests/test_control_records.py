"""What the control interface returns about runs, skipped orders and real-time events is the
service's own records, converted from the state's rows: the JSON an attached dashboard
receives is exactly what this protocol sent before the state became a package."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from order_export_tui.service import records
from order_export_tui.service.session import hosted_session
from order_export_tui.service.wire import decode, encode
from order_export_tui.state import (
    DELIVERED,
    EXPIRED,
    HELD,
    ORDER_COMPLETED,
    PAYMENT_STATUS,
    QUEUED,
    SKIPPED,
    SUPERSEDED,
    StateStore,
)
from tests.conftest import SettingsMaker

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 27, 9, 1, 30, tzinfo=UTC)

# As the daemon sent them before the transfer types moved to the service (captured from it).
RUNS_JSON = (
    '[{"type": "RunRecord", "run_id": 1, "trigger": "schedule", "started_at":'
    ' "2026-11-27T09:00:00+00:00", "finished_at": "2026-11-27T09:01:30+00:00", "outcome":'
    ' "partial", "counts": {"read": 5, "new": 2, "updated": 1, "unchanged": 1, "retried": 3,'
    ' "skipped": 1, "cancelled": 0}, "error": null, "log_file": "logs/run-1.log"}]'
)
SKIPPED_JSON = (
    '[{"type": "SkippedOrder", "order_id": "SO-1", "reason": "no e-mail address", "attempts":'
    ' 1, "first_skipped_at": "2026-11-27T09:01:30+00:00", "last_tried_at":'
    ' "2026-11-27T09:01:30+00:00", "run_id": 1}]'
)
EVENTS_JSON = (
    '[{"type": "RealtimeEventRecord", "event_id": 1, "kind": "payment_status", "order_id":'
    ' "SO-2", "received_at": "2026-11-27T09:00:00+00:00", "status": "held", "attempts": 1,'
    ' "last_error": "the order is not known yet", "finished_at": "2026-11-27T09:01:30+00:00"}]'
)


def fill(state: StateStore) -> None:
    run_id = state.start_run(trigger="schedule", started_at=T0)
    state.set_run_log_file(run_id, "logs/run-1.log")
    state.record_batch(
        run_id=run_id, now=T1, exported=[], skipped={"SO-1": "no e-mail address"}, resolved=[]
    )
    counts = {"read": 5, "new": 2, "updated": 1, "unchanged": 1, "retried": 3, "skipped": 1}
    state.finish_run(run_id, finished_at=T1, outcome="partial", counts=counts, error=None)
    event_id, _ = state.enqueue_event(
        kind=PAYMENT_STATUS, order_id="SO-2", payload=b"{}", dedupe_key="k-1", now=T0
    )
    state.finish_event(event_id, status=HELD, now=T1, error="the order is not known yet")


def wire(value: Any) -> str:
    return json.dumps(encode(value))


async def test_the_control_answers_travel_as_the_same_json_and_come_back_as_records(
    make_settings: SettingsMaker,
) -> None:
    with hosted_session(make_settings(), role="run") as session:
        fill(session.state)
        runs = await session.control.recent_runs()
        skipped = await session.control.skipped_orders()
        events = await session.control.recent_events()
    assert [type(run) for run in runs] == [records.RunRecord]
    assert [type(order) for order in skipped] == [records.SkippedOrder]
    assert [type(event) for event in events] == [records.RealtimeEventRecord]
    assert wire(runs) == RUNS_JSON
    assert wire(skipped) == SKIPPED_JSON
    assert wire(events) == EVENTS_JSON
    assert decode(json.loads(RUNS_JSON), list[records.RunRecord]) == runs
    assert decode(json.loads(SKIPPED_JSON), list[records.SkippedOrder]) == skipped
    assert decode(json.loads(EVENTS_JSON), list[records.RealtimeEventRecord]) == events


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (QUEUED, ORDER_COMPLETED, ("queued", "order_completed")),
        (HELD, PAYMENT_STATUS, ("held", "payment_status")),
        (DELIVERED, ORDER_COMPLETED, ("delivered", "order_completed")),
        (SUPERSEDED, PAYMENT_STATUS, ("superseded", "payment_status")),
        (SKIPPED, ORDER_COMPLETED, ("skipped", "order_completed")),
        (EXPIRED, PAYMENT_STATUS, ("expired", "payment_status")),
    ],
)
async def test_every_state_and_kind_of_an_event_reaches_the_dashboard_in_the_protocols_words(
    make_settings: SettingsMaker, status: str, kind: str, words: tuple[str, str]
) -> None:
    with hosted_session(make_settings(), role="run") as session:
        event_id, _ = session.state.enqueue_event(
            kind=kind, order_id="SO-9", payload=b"{}", dedupe_key="k-9", now=T0
        )
        if status != QUEUED:
            session.state.finish_event(event_id, status=status, now=T1)
        (event,) = await session.control.recent_events()
    assert (event.status, event.kind) == words
    assert words[0] in {
        records.QUEUED,
        records.HELD,
        records.DELIVERED,
        records.SUPERSEDED,
        records.SKIPPED,
        records.EXPIRED,
    }
    assert words[1] in {records.ORDER_COMPLETED, records.PAYMENT_STATUS}
