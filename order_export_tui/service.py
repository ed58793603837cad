"""The service: the scheduler, the engine and the failure e-mail, wired for the daemon and
the dashboard alike.

A `schedule.Scheduler()` holds at most one job, and that job only asks for a run; the
asyncio loop in `serve()` calls `run_pending()` and sleeps until the next due time (or until
the settings change). A request that arrives while a run is in flight is skipped and recorded,
never queued behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import schedule

from order_export_tui.engine.events import RunReport
from order_export_tui.engine.runner import ExportEngine, local_now
from order_export_tui.notify import NotificationResult, notify_run_failed
from order_export_tui.settings import Settings

log = logging.getLogger("order_export.service")

# The loop wakes at least this often, so a clock jump (suspend, NTP) is noticed in time.
MAX_IDLE_SECONDS = 60.0

SCHEDULE = "schedule"


@dataclass(frozen=True, slots=True)
class RunRequestSkipped:
    at: datetime
    trigger: str
    reason: str


@dataclass(frozen=True, slots=True)
class FailureEmailOutcome:
    run_id: int
    result: NotificationResult


ServiceEvent = RunRequestSkipped | FailureEmailOutcome
Notifier = Callable[[Settings, RunReport], Awaitable[NotificationResult | None]]
Waiter = Callable[[asyncio.Event, float], Awaitable[None]]


async def wait_for_event(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def schedule_description(settings: Settings) -> str:
    task = settings.task
    if not task.run_on_schedule:
        return "manual only"
    if task.run_time:
        return f"daily at {task.run_time} (server time)"
    return f"every {task.run_interval_minutes} minutes"


class ExportService:
    def __init__(
        self,
        settings: Settings,
        engine: ExportEngine,
        *,
        notifier: Notifier = notify_run_failed,
        wait: Waiter = wait_for_event,
        clock: Callable[[], datetime] = local_now,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.scheduler = schedule.Scheduler()
        self.last_notification: NotificationResult | None = None
        self._notifier = notifier
        self._wait = wait
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._run_task: asyncio.Task[RunReport] | None = None
        self._listeners: list[Callable[[ServiceEvent], None]] = []
        self._build_schedule()

    # --- what the dashboard and the daemon read ---------------------------------------------

    @property
    def next_run(self) -> datetime | None:
        """When the schedule next asks for a run (server-local, aware), None when manual only."""
        due = self.scheduler.next_run
        return None if due is None else due.astimezone()

    @property
    def run_in_progress(self) -> bool:
        return self.engine.running or (self._run_task is not None and not self._run_task.done())

    def subscribe(self, listener: Callable[[ServiceEvent], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # --- steering -----------------------------------------------------------------------

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings from now on: the next run uses them, the schedule changes at once."""
        before = self.settings.task
        self.settings = settings
        self.engine.settings = settings
        after = settings.task
        if (before.run_on_schedule, before.run_interval_minutes, before.run_time) != (
            after.run_on_schedule,
            after.run_interval_minutes,
            after.run_time,
        ):
            self._build_schedule()
            self._wake.set()

    def request_run(self, trigger: str = "manual", *, only: frozenset[str] | None = None) -> bool:
        """Start a run now; False (recorded, never queued) when one is already in flight.

        `only`: just these order ids (re-trying chosen skipped orders)."""
        if self._stopping:
            self._skip(trigger, "the service is stopping")
            return False
        if self.run_in_progress:
            self._skip(trigger, "a run is already in progress")
            return False
        self._run_task = asyncio.get_running_loop().create_task(self._run(trigger, only))
        return True

    def run_pending(self) -> None:
        """Fire the schedule's job if it is due."""
        self.scheduler.run_pending()

    async def wait_for_run(self) -> RunReport | None:
        """The report of the run in flight (or the last one) once it has finished."""
        if self._run_task is None:
            return None
        with contextlib.suppress(asyncio.CancelledError):
            return await self._run_task
        return self.engine.last_report

    async def serve(self) -> None:
        """Run the schedule until `stop()`."""
        while not self._stopping:
            self.run_pending()
            idle = self.scheduler.idle_seconds
            timeout = MAX_IDLE_SECONDS if idle is None else min(max(idle, 0.0), MAX_IDLE_SECONDS)
            self._wake.clear()
            await self._wait(self._wake, timeout)

    async def stop(self, *, abandon_batch: bool = False) -> None:
        """Stop scheduling; the run in flight stops at its next batch boundary (or, with
        `abandon_batch`, at once: the batch in flight is recorded nowhere and sent again later)."""
        self._stopping = True
        self._wake.set()
        if self._run_task is None or self._run_task.done():
            return
        if abandon_batch:
            self._run_task.cancel()
        else:
            self.engine.cancel()
        await self.wait_for_run()

    # --- inside -------------------------------------------------------------------------

    def _build_schedule(self) -> None:
        self.scheduler.clear()
        task = self.settings.task
        if not task.run_on_schedule:
            return
        if task.run_time:
            self.scheduler.every().day.at(task.run_time).do(self.request_run, SCHEDULE)
        elif task.run_interval_minutes > 0:
            self.scheduler.every(task.run_interval_minutes).minutes.do(self.request_run, SCHEDULE)

    def _skip(self, trigger: str, reason: str) -> None:
        at = self._clock()
        self.engine.state.record_skipped_tick(at=at, trigger=trigger, reason=reason)
        log.info("%s run request skipped: %s", trigger, reason)
        self._emit(RunRequestSkipped(at, trigger, reason))

    async def _run(self, trigger: str, only: frozenset[str] | None) -> RunReport:
        report = await self.engine.run(trigger, only=only)
        result = await self._notifier(self.settings, report)
        if result is not None:
            self.last_notification = result
            self._emit(FailureEmailOutcome(report.run_id, result))
        return report

    def _emit(self, event: ServiceEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("a service listener failed on %s", type(event).__name__)
