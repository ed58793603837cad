"""The dashboard's picture of the current (or last) run, folded from the engine's events.

Plain Python: the engine's events arrive as sync callbacks; `RunTracker` folds each one in
a few microseconds, and the dashboard reads immutable `RunProgress` snapshots of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from order_export_tui.service.control import RunInProgress
from order_export_tui.service.events import (
    SUCCEEDED,
    BatchFinished,
    BatchStarted,
    CancelRequested,
    EngineEvent,
    RunFinished,
    RunStarted,
)
from order_export_tui.service.export_service import OrdersAnswer
from order_export_tui.service.records import COUNT_NAMES, RunRecord
from order_export_tui.tui.formatting import between

MIN_RATE_SECONDS = 0.5
IDLE = "idle"
RUNNING = "running"
CANCELLING = "cancelling"

ZERO_COUNTS: Mapping[str, int] = MappingProxyType(dict.fromkeys(COUNT_NAMES, 0))


@dataclass(frozen=True, slots=True)
class RunProgress:
    """One moment of a run, as the progress and counters panels show it."""

    state: str = IDLE
    run_id: int | None = None
    trigger: str = ""
    started_at: datetime | None = None
    total: int | None = None
    processed: int = 0
    batch_no: int = 0
    batch_size: int | None = None
    counts: Mapping[str, int] = field(default_factory=lambda: ZERO_COUNTS)
    skip_budget: int | None = None
    started_monotonic: float | None = None
    finished_monotonic: float | None = None
    duration_seconds: float | None = None
    outcome: str | None = None
    error: str | None = None
    log_file: str | None = None
    # A finished run limited to chosen ids (resend, retry): each id's outcome.
    answer: OrdersAnswer | None = None

    @property
    def active(self) -> bool:
        return self.state != IDLE

    @property
    def batches_total(self) -> int | None:
        if self.total is None or not self.batch_size:
            return None
        return max(1, math.ceil(self.total / self.batch_size)) if self.total else 0

    @property
    def fraction(self) -> float | None:
        if self.total is None:
            return None
        return 1.0 if self.total == 0 else min(1.0, self.processed / self.total)

    def elapsed(self, now_monotonic: float) -> float | None:
        if self.duration_seconds is not None:
            return self.duration_seconds
        if self.started_monotonic is None:
            return None
        end = self.finished_monotonic if self.finished_monotonic is not None else now_monotonic
        return max(0.0, end - self.started_monotonic)

    def rate(self, now_monotonic: float) -> float | None:
        """Orders per second over the whole run so far; None in a running run's first half
        second, whose rate says nothing (a first batch in a millisecond is not 100 million
        orders/s). A finished run's rate is its own, however short."""
        elapsed = self.elapsed(now_monotonic)
        too_soon = self.active and elapsed is not None and elapsed < MIN_RATE_SECONDS
        if not elapsed or too_soon or not self.processed:
            return None
        return self.processed / elapsed

    def eta(self, now_monotonic: float) -> float | None:
        """Seconds left at the rate so far; 0 once finished, None while unknown."""
        if not self.active:
            return 0.0 if self.outcome is not None else None
        rate = self.rate(now_monotonic)
        if rate is None or self.total is None:
            return None
        return max(0, self.total - self.processed) / rate


class RunTracker:
    """Folds engine events into the run's progress; says which events must show at once."""

    def __init__(self, monotonic: Callable[[], float], default_skip_budget: int) -> None:
        self._monotonic = monotonic
        self._default_skip_budget = default_skip_budget
        self._progress = RunProgress(skip_budget=default_skip_budget)
        self._pending: dict[str, object] = {}

    def seed(self, progress: RunProgress) -> None:
        """Start from what is known (the last recorded run) before any event arrives."""
        self._progress = progress
        self._pending = {}

    def snapshot(self) -> RunProgress:
        if self._pending:
            self._progress = _replace(self._progress, self._pending)
            self._pending = {}
        return self._progress

    def handle(self, event: EngineEvent) -> bool:
        """Fold one event in; True when it changes the run's state (show it without delay)."""
        match event:
            case BatchStarted():
                self._pending["batch_no"] = event.batch_no
                return False
            case BatchFinished():
                self._pending["processed"] = event.processed
                self._pending["counts"] = MappingProxyType(dict(event.counts))
                if event.total is not None:
                    self._pending["total"] = event.total
                return False
            case RunStarted():
                self._pending.clear()
                self._progress = RunProgress(
                    state=RUNNING,
                    run_id=event.run_id,
                    trigger=event.trigger,
                    started_at=event.started_at,
                    total=event.total,
                    batch_size=event.settings.batch_size or None,
                    skip_budget=event.settings.max_items_to_skip or self._default_skip_budget,
                    started_monotonic=self._monotonic(),
                )
                return True
            case CancelRequested():
                self._pending["state"] = CANCELLING
                return True
            case RunFinished():
                report = event.report
                progress = self.snapshot()
                self._progress = _replace(
                    progress,
                    {
                        "state": IDLE,
                        "run_id": report.run_id,
                        "trigger": report.trigger,
                        "started_at": report.started_at,
                        "processed": report.counts.get("read", progress.processed),
                        "counts": MappingProxyType(dict(report.counts)),
                        "finished_monotonic": self._monotonic(),
                        "duration_seconds": report.duration_seconds,
                        "outcome": report.outcome,
                        "error": report.error,
                        "log_file": report.log_file,
                        "answer": OrdersAnswer.of(report) if report.orders else None,
                    },
                )
                return True
        return False

    def set_log_file(self, log_file: str | None) -> None:
        self._pending["log_file"] = log_file

    def join(self, run: RunInProgress, now: float) -> None:
        """Pick up a run already in flight (a dashboard attached in the middle of it)."""
        started = datetime.fromisoformat(run.started_at)
        elapsed = max(0.0, (datetime.now(started.tzinfo) - started).total_seconds())
        counts = dict(ZERO_COUNTS)
        counts.update(skipped=run.skipped, retried=run.retried, read=run.orders_done)
        self._pending = {}
        self._progress = RunProgress(
            state=CANCELLING if run.cancelling else RUNNING,
            run_id=run.run_id,
            trigger=run.trigger,
            started_at=started,
            total=run.orders_total,
            processed=run.orders_done,
            batch_no=run.orders_done // run.batch_size if run.batch_size else 0,
            batch_size=run.batch_size,
            counts=MappingProxyType(counts),
            skip_budget=run.skip_budget or self._default_skip_budget,
            started_monotonic=now - elapsed,
            log_file=run.log_file,
        )


def _replace(progress: RunProgress, changes: Mapping[str, object]) -> RunProgress:
    values = {name: getattr(progress, name) for name in RunProgress.__dataclass_fields__}
    values.update(changes)
    return RunProgress(**values)  # type: ignore[arg-type]


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def progress_of_record(record: RunRecord, skip_budget: int) -> RunProgress:
    """The last recorded run, shown until this dashboard starts one of its own."""
    seconds = between(record.started_at, record.finished_at)
    started = datetime.fromisoformat(record.started_at) if record.started_at else None
    return RunProgress(
        run_id=record.run_id,
        trigger=record.trigger,
        started_at=started,
        # A run that succeeded read its whole window: its bar is full, as the engine saw it.
        total=record.counts.get("read", 0) if record.outcome == SUCCEEDED else None,
        processed=record.counts.get("read", 0),
        counts=MappingProxyType(dict(record.counts)),
        skip_budget=skip_budget,
        duration_seconds=seconds,
        outcome=record.outcome,
        error=record.error,
        log_file=record.log_file,
    )
