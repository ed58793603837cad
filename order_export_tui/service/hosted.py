"""`HostedControl`: the `ExportControl` of the service that runs in this very process.

The daemon and a dashboard that hosts the service use it, and the control socket serves it to
attached dashboards and commands, so every way in behaves the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol

from order_export_tui.engine.backfill import backfill_day
from order_export_tui.engine.fanout import Listeners
from order_export_tui.engine.runlogs import run_log_files
from order_export_tui.engine.runner import window_start
from order_export_tui.service.control import (
    Answer,
    DestinationInfo,
    Event,
    IntakeInfo,
    Listener,
    ProcessInfo,
    QueueCounts,
    RunInProgress,
    RunLogFile,
    SaveAnswer,
    SettingsView,
    StatusSnapshot,
    cluster_info,
)
from order_export_tui.service.events import (
    BatchFinished,
    CancelRequested,
    ControlEvent,
    EventRetried,
    RetryScheduled,
    RunFinished,
    RunStarted,
)
from order_export_tui.service.export_service import ExportService, schedule_description
from order_export_tui.service.records import RealtimeEventRecord, RunRecord, SkippedOrder
from order_export_tui.service.state_records import (
    realtime_event_record,
    run_record,
    skipped_order,
)
from order_export_tui.service.verify_answer import VerifyAnswer
from order_export_tui.settings import (
    SettingsError,
    destination_identity,
    load_settings,
    required_secrets,
    secret_value,
    settings_to_dict,
)
from order_export_tui.settings.model import Settings
from order_export_tui.settings.store import SettingsChangedError, read_revision, save_changes
from order_export_tui.state import ClusterDaemon, StateStore


class Companion(Protocol):
    """Something served beside the service while it runs (the control socket's server)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class _RunWatch:
    """The run in flight as the engine's events tell it, for the status snapshot."""

    run: RunInProgress | None = None

    def handle(self, event: ControlEvent) -> None:
        run = self.run
        match event:
            case RunStarted():
                self.run = RunInProgress(
                    run_id=event.run_id,
                    trigger=event.trigger,
                    started_at=event.started_at.isoformat(),
                    orders_total=event.total,
                    orders_done=0,
                    sent=0,
                    skipped=0,
                    retried=0,
                    batch_size=event.settings.batch_size or None,
                    skip_budget=event.settings.max_items_to_skip,
                )
            case BatchFinished() if run is not None:
                counts = event.counts
                self.run = replace(
                    run,
                    orders_total=event.total if event.total is not None else run.orders_total,
                    orders_done=event.processed,
                    sent=counts.get("new", 0)
                    + counts.get("updated", 0)
                    + counts.get("cancelled", 0),
                    skipped=counts.get("skipped", 0),
                    retried=counts.get("retried", 0),
                )
            case RetryScheduled() if run is not None:
                self.run = replace(run, retried=run.retried + 1)
            case CancelRequested() if run is not None:
                self.run = replace(run, cancelling=True)
            case RunFinished():
                self.run = None


class HostedControl:
    """The service hosted here, behind the `ExportControl` interface."""

    attached = False

    def __init__(
        self,
        service: ExportService,
        state: StateStore,
        *,
        role: str,
        since: str,
        pid: int | None = None,
    ) -> None:
        self.service = service
        self.state = state
        self.process = ProcessInfo(pid=pid or os.getpid(), role=role, since=since)
        self.scheduler_problem: str | None = None
        # With a PostgreSQL state: what lists the daemons sharing it (`status`'s cluster).
        self.cluster_members: Callable[[], list[ClusterDaemon]] | None = None
        self._watch = _RunWatch()
        self._intake_retries = 0
        self._listeners: Listeners[Event] = Listeners("control")
        self._companions: list[Companion] = []
        service.engine.subscribe(self._on_event)
        service.subscribe(self._on_event)

    # --- lifecycle ----------------------------------------------------------------------

    def serve_beside(self, companion: Companion) -> None:
        """Start `companion` whenever `serve()` starts, and stop it when it ends (the session
        puts the control socket's server here)."""
        self._companions.append(companion)

    async def serve(self) -> None:
        """Run the schedule (and the real-time intake) until `stop()`, with the companions
        started first (a control socket that cannot be bound: `ControlSocketError`)."""
        started: list[Companion] = []
        try:
            for companion in self._companions:
                await companion.start()
                started.append(companion)
            await self.service.serve()
        finally:
            for companion in reversed(started):
                await companion.stop()

    async def stop(self, *, abandon_batch: bool = False) -> None:
        await self.service.stop(abandon_batch=abandon_batch)

    # --- reading ------------------------------------------------------------------------

    async def status(self) -> StatusSnapshot:
        return self.snapshot()

    def snapshot(self) -> StatusSnapshot:
        service = self.service
        state = self.state
        last = state.recent_runs(2)
        finished = [run for run in last if run.finished_at is not None]
        last_run = None
        if finished:
            last_run = run_record_json(run_record(finished[0]))
        due = service.next_run
        realtime = service.realtime
        intake = IntakeInfo()
        if realtime is not None:
            intake = IntakeInfo(
                state="listening" if realtime.listening else "starting",
                listen=realtime.listen,
                retried=self._intake_retries,
            )
        run = self._run_in_flight(last)
        if run is not None and run.log_file is None:
            log_file = next((r.log_file for r in last if r.run_id == run.run_id), None)
            run = replace(run, log_file=log_file)
            self._watch.run = run
        return StatusSnapshot(
            process=self.process,
            run=run,
            last_run=last_run,
            next_run_at=None if due is None else due.isoformat(timespec="seconds"),
            skipped_orders=state.skipped_count(),
            queue=queue_counts(state),
            schedule=schedule_description(service.settings),
            exported=window_exported_count(state, service.settings, service.now()),
            intake=intake,
            scheduler_problem=self.scheduler_problem,
            destination=destination_info(service.settings),
            cluster=None if self.cluster_members is None else cluster_info(self.cluster_members()),
            last_verify=service.last_verify_outcome,
        )

    def _run_in_flight(self, last: list[Any]) -> RunInProgress | None:
        """The run in progress (`last`: the newest run rows), as its events tell it."""
        return self._watch.run if self.service.run_in_progress else None

    async def recent_runs(self, limit: int = 50) -> list[RunRecord]:
        return [run_record(row) for row in self.state.recent_runs(limit)]

    async def skipped_orders(self, limit: int = 500) -> list[SkippedOrder]:
        return [skipped_order(row) for row in self.state.skipped_orders(limit)]

    async def recent_events(self, limit: int = 200) -> list[RealtimeEventRecord]:
        return [realtime_event_record(row) for row in self.state.recent_events(limit)]

    async def read_settings(self) -> SettingsView:
        return settings_view(self.service.settings, of_file=True)

    async def run_logs(self) -> list[RunLogFile]:
        files = []
        for path in run_log_files(self.service.settings.logs_dir_path):
            try:
                size = path.stat().st_size
            except OSError:
                continue  # removed by retention while listing
            files.append(RunLogFile(path.name, str(path), size))
        return files

    # --- steering -----------------------------------------------------------------------

    async def start_run(
        self, trigger: str = "manual", *, only: list[str] | None = None, since: str | None = None
    ) -> Answer:
        if trigger == "retry" and only is None:
            only = self.state.skipped_order_ids()
            if not only:
                return Answer(False, "no skipped orders to re-try")
        if trigger == "resend" and not only:
            return Answer(False, "no order id given")
        try:
            day = None if since is None else backfill_day(since, date.today())
        except ValueError as error:
            return Answer(False, str(error))
        chosen = None if only is None else frozenset(only)
        if not self.service.request_run(
            trigger, only=chosen, since=day, resend=trigger == "resend"
        ):
            reason = "the service is stopping" if self.service.stopping else "a run is in progress"
            if self.service.verifying:
                reason = "a verify is in progress"
            return Answer(False, f"not started: {reason}")
        # The run's id is known once its task has started it; let it.
        for _ in range(100):
            if self._watch.run is not None or not self.service.run_in_progress:
                break
            await asyncio.sleep(0.01)
        run_id = None if self._watch.run is None else self._watch.run.run_id
        return Answer(True, "started", run_id=run_id)

    async def cancel(self) -> Answer:
        if not self.service.run_in_progress:
            return Answer(False, "no run to cancel")
        run_id = None if self._watch.run is None else self._watch.run.run_id
        if not self.service.engine.cancel():
            return Answer(True, "already stopping at the next batch boundary", run_id=run_id)
        return Answer(True, "stopping at the next batch boundary", run_id=run_id)

    async def retry_skipped(self, order_ids: list[str] | None = None) -> Answer:
        return await self.start_run("retry", only=order_ids)

    async def save_settings(
        self, changes: dict[str, Any], revision: str | None = None
    ) -> SaveAnswer:
        try:
            settings = save_changes(self.service.settings.path, changes, revision=revision)
        except SettingsChangedError as error:
            return SaveAnswer(False, [str(error)], changed_since_read=True)
        except SettingsError as error:
            return SaveAnswer(False, error.problems)
        needs_restart = self.service.apply_settings(settings)
        return SaveAnswer(True, [], needs_restart=needs_restart)

    async def verify(self, since: str | None = None, repair: bool = False) -> VerifyAnswer:
        try:
            day = None if since is None else backfill_day(since, date.today())
        except ValueError as error:
            return VerifyAnswer(False, str(error))
        return await self.service.verify(day, repair=repair)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    # --- inside -------------------------------------------------------------------------

    def _on_event(self, event: ControlEvent) -> None:
        self._watch.handle(event)
        if isinstance(event, EventRetried):
            self._intake_retries += 1
        self._listeners.emit(event)


def window_exported_count(state: StateStore, settings: Settings, now: datetime) -> int:
    """The orders of the export window (the last `task.max_days_to_export` days, as a run
    reads them) that the configured destination holds as last confirmed."""
    return state.exported_count(
        window_start(now, settings.task.max_days_to_export),
        destination=destination_identity(settings).identity,
    )


def destination_info(settings: Settings) -> DestinationInfo:
    """The destination whose copy the status counts."""
    identity = destination_identity(settings)
    return DestinationInfo(identity.app, identity.identity)


def queue_counts(state: StateStore) -> QueueCounts:
    """The real-time queue as the state database holds it."""
    counts = state.event_counts()
    return QueueCounts(
        queued=counts.get("queued", 0),
        held=counts.get("held", 0),
        delivered=counts.get("delivered", 0),
        skipped=counts.get("skipped", 0),
    )


def run_record_json(run: RunRecord) -> dict[str, Any]:
    """A finished run of the history as `run --json` prints a report."""
    duration = None
    if run.finished_at is not None:
        started = datetime.fromisoformat(run.started_at)
        duration = round((datetime.fromisoformat(run.finished_at) - started).total_seconds(), 3)
    return {
        "run_id": run.run_id,
        "outcome": run.outcome,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": duration,
        "counts": dict(run.counts),
        "error": run.error,
        "log_file": run.log_file,
        "trigger": run.trigger,
    }


def settings_view(settings: Settings, *, of_file: bool = False) -> SettingsView:
    """The settings in force; with `of_file`, the settings file as it is now (what a form
    edits) with its revision, or, when it does not validate, the settings in force and the
    file's problems."""
    problems: list[str] = []
    revision = ""
    if of_file:
        with contextlib.suppress(SettingsError):
            revision = read_revision(settings.path)
        try:
            settings = load_settings(settings.path)
        except SettingsError as error:
            problems = error.problems
    secrets = {
        key: "set" if secret_value(variable) is not None else "missing"
        for key, variable in required_secrets(settings)
    }
    data = settings_to_dict(settings)
    return SettingsView(str(settings.path), data, secrets, revision, problems)
