"""The leader's run progress carried to other machines (interfaces.md §10): the leader
publishes each event of its runs on the database (`state.pg_run_events`), and a command
forwarded from a standby shows them as it would on the leader."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from order_export_tui.engine.events import BatchFinished, BatchStarted, RunFinished, RunReport
from order_export_tui.service import wire
from order_export_tui.service.events import ControlEvent, is_engine_event
from order_export_tui.service.hosted import HostedControl
from order_export_tui.state import PostgresLocation


def publish_runs(
    control: HostedControl, location: PostgresLocation
) -> Callable[[], Awaitable[None]]:
    """Subscribe the leader's runs to the database; the companion that sends them."""
    from order_export_tui.state.pg_run_events import RunEventPublisher

    publisher = RunEventPublisher(location)

    def on_event(event: object) -> None:
        if is_engine_event(event) and getattr(event, "run_id", None) is not None:
            progress = isinstance(event, BatchStarted | BatchFinished)
            publisher.publish(json.dumps(wire.encode(event)), progress=progress)

    control.subscribe(on_event)
    return publisher.serve


def decode_run_event(text: str) -> ControlEvent | None:
    """One published event; None for what this version does not know."""
    try:
        return wire.decode_event(json.loads(text))
    except ValueError:  # JSON or wire: a newer leader's event
        return None


def finished_from_row(row: Any) -> RunFinished:
    """A run's end as its row in the shared state tells it (its event was not heard)."""
    started = datetime.fromisoformat(row.started_at)
    finished = datetime.fromisoformat(row.finished_at) if row.finished_at else started
    report = RunReport(
        run_id=row.run_id,
        trigger=row.trigger,
        outcome=row.outcome,
        started_at=started,
        finished_at=finished,
        counts=dict(row.counts),
        error=row.error,
        log_file=row.log_file,
    )
    return RunFinished(report)
