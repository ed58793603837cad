"""The real-time events by state, as the status reads them every second, come from a tally
that triggers keep in the writer's own transaction: it always equals counting the events,
whichever connection wrote them, and a database from before the tally is counted once."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_export_tui.state import (
    DELIVERED,
    EXPIRED,
    HELD,
    QUEUED,
    SKIPPED,
    SUPERSEDED,
    ExportedOrder,
    StateStore,
)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
STATES = [QUEUED, HELD, DELIVERED, SUPERSEDED, SKIPPED, EXPIRED]


def counted(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT status, count(*) FROM realtime_event GROUP BY status")
        return dict(rows.fetchall())


operations = st.lists(
    st.one_of(
        st.tuples(st.just("enqueue"), st.integers(0, 12), st.booleans()),
        st.tuples(st.just("finish"), st.integers(0, 12), st.sampled_from(STATES)),
        st.tuples(st.just("attempt"), st.integers(0, 12), st.booleans()),
        st.tuples(st.just("export"), st.integers(0, 12), st.booleans()),
        st.tuples(st.just("expire"), st.integers(0, 12), st.booleans()),
    ),
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations)
def test_the_tally_equals_counting_the_events_after_any_sequence(
    tmp_path_factory, steps: list[tuple[str, int, object]]
) -> None:
    path = tmp_path_factory.mktemp("tally") / "state.sqlite"
    state = StateStore(path)
    intake = StateStore(path, durable=True)  # the webhook intake's own connection
    try:
        for step, n, flag in steps:
            order_id = f"SO-{n:06d}"
            if step == "enqueue":
                writer = intake if flag else state
                writer.enqueue_event(
                    kind="payment_status",
                    order_id=order_id,
                    payload=b"{}",
                    dedupe_key=f"key-{n}",  # the same key twice: one event
                    now=NOW,
                )
            elif step == "finish":
                state.finish_event(n + 1, status=str(flag), now=NOW)
            elif step == "attempt":
                state.note_event_attempt(n + 1, "503")
            elif step == "export":  # held payments for the order are delivered with it
                state.record_batch(
                    run_id=None,
                    now=NOW,
                    exported=[ExportedOrder(order_id, "h", "shipped", "paid")],
                    skipped={},
                    resolved=[],
                )
            else:
                state.expire_held_events(older_than=NOW + timedelta(days=1), now=NOW)
            assert state.event_counts() == counted(path)
            assert intake.event_counts() == counted(path)
    finally:
        intake.close()
        state.close()


def test_a_database_from_before_the_tally_is_counted_once_on_opening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    state = StateStore(path)
    for n in range(5):
        state.enqueue_event(
            kind="order_completed", order_id=f"SO-{n}", payload=b"{}", dedupe_key=str(n), now=NOW
        )
    state.finish_event(1, status=DELIVERED, now=NOW)
    state.finish_event(2, status=HELD, now=NOW)
    state.close()
    with sqlite3.connect(path) as db:  # as the previous version left it
        for trigger in ("insert", "update", "delete"):
            db.execute(f"DROP TRIGGER realtime_tally_{trigger}")
        db.execute("DROP TABLE realtime_tally")

    reopened = StateStore(path)
    again = StateStore(path)  # a second connection counts nothing twice
    try:
        assert reopened.event_counts() == {QUEUED: 3, DELIVERED: 1, HELD: 1}
        assert again.event_counts() == reopened.event_counts()
        reopened.finish_event(3, status=SKIPPED, now=NOW)
        assert again.event_counts() == {QUEUED: 2, DELIVERED: 1, HELD: 1, SKIPPED: 1}
    finally:
        again.close()
        reopened.close()


def test_a_database_from_before_send_marks_gains_them_on_opening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    state = StateStore(path)
    state.enqueue_event(
        kind="order_completed", order_id="SO-1", payload=b"{}", dedupe_key="1", now=NOW
    )
    state.close()
    with sqlite3.connect(path) as db:  # as the previous version left it
        db.execute("ALTER TABLE realtime_event DROP COLUMN send_started_at")

    reopened = StateStore(path)
    try:
        (event,) = reopened.queued_events(10)
        assert event.send_started_at is None
        reopened.note_send_started(event.event_id, NOW)
        assert reopened.queued_events(10)[0].send_started_at == NOW.isoformat()
        reopened.note_event_attempt(event.event_id, "503 from the platform")
        assert reopened.queued_events(10)[0].send_started_at is None
    finally:
        reopened.close()
