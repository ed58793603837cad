"""Every write of the state goes through one transaction helper, and the aggregates' writes
join an enclosing transaction: a batch's outcome (exported orders, skipped orders, held
payment statuses) is recorded whole or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from order_export_tui.state import (
    HELD,
    PAYMENT_STATUS,
    ExportedOrder,
    StateLocation,
    StateStore,
    StateWriteError,
)
from tests.support.state_backends import (
    both_state_backends,
    refuse_inserts,
    state_location_for,
)

state_backend = both_state_backends  # every test here runs on SQLite and on PostgreSQL

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def order(order_id: str) -> ExportedOrder:
    return ExportedOrder(order_id, "hash", "shipped", "paid", b"{}", "2026-11-26T10:00:00+00:00")


@pytest.fixture
def location(request: pytest.FixtureRequest, state_backend: str, tmp_path: Path) -> StateLocation:
    return state_location_for(request, state_backend, tmp_path / "state.sqlite")


@pytest.fixture
def state(location: StateLocation) -> Iterator[StateStore]:
    store = StateStore(location)
    yield store
    store.close()


def held_payment(state: StateStore, order_id: str) -> int:
    event_id, _ = state.enqueue_event(
        kind=PAYMENT_STATUS, order_id=order_id, payload=b"{}", dedupe_key=order_id, now=NOW
    )
    state.finish_event(event_id, status=HELD, now=NOW)
    return event_id


def test_a_batch_the_database_refuses_in_part_is_recorded_not_at_all(
    state: StateStore, location: StateLocation
) -> None:
    held_payment(state, "SO-1")
    state.record_batch(run_id=None, now=NOW, exported=[], skipped={"SO-3": "bad"}, resolved=[])
    refuse_inserts(location, "skipped_order", "no more skips")

    with pytest.raises(StateWriteError, match="no more skips"):
        state.record_batch(
            run_id=None,
            now=NOW,
            exported=[order("SO-1")],
            skipped={"SO-2": "no e-mail address"},
            resolved=["SO-3"],
        )

    assert state.exported_orders(["SO-1"]) == {}
    assert [(e.order_id, e.status) for e in state.recent_events()] == [("SO-1", HELD)]
    assert state.skipped_order_ids() == ["SO-3"]


def test_writes_of_several_aggregates_in_one_transaction_roll_back_together(
    state: StateStore,
) -> None:
    with pytest.raises(RuntimeError, match="stopped halfway"), state.transaction():
        run_id = state.start_run(trigger="manual", started_at=NOW)
        state.record_batch(
            run_id=run_id, now=NOW, exported=[order("SO-1")], skipped={}, resolved=[]
        )
        raise RuntimeError("stopped halfway")

    assert state.recent_runs() == []
    assert state.exported_count() == 0
    run_id = state.start_run(trigger="manual", started_at=NOW)  # the store still writes
    assert [run.run_id for run in state.recent_runs()] == [run_id]
