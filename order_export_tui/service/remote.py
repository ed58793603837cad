"""What the command line does with a process that runs exports elsewhere: follow a run it
started there, cancel that process's run, read the status (from the state database when no
process runs)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

from order_export_tui.engine.events import RunFinished, RunReport
from order_export_tui.engine.runner import local_now
from order_export_tui.service.control import ProcessInfo, RunInProgress, StatusSnapshot
from order_export_tui.service.control_client import AttachedControl, Disconnected, attach
from order_export_tui.service.hosted import (
    destination_info,
    queue_counts,
    run_record_json,
    window_exported_count,
)
from order_export_tui.service.leadership import cluster_of
from order_export_tui.service.state_records import run_record
from order_export_tui.service.verify_answer import VerifyOutcome
from order_export_tui.settings import Settings
from order_export_tui.state import RunRow, StateStore, local_anchor, lock_holder, state_location

CONNECT_SECONDS = 5.0
CANCEL_WAIT_SECONDS = 15 * 60.0


class RemoteRunError(Exception):
    """The process that runs exports refused the run, or stopped answering during it."""


class _RunFollower:
    def __init__(self, control: AttachedControl, on_event: Callable[[object], None]) -> None:
        self.control = control
        self.reports: dict[int, RunReport] = {}
        self.lost: str | None = None
        self._on_event = on_event
        self._changed = asyncio.Event()
        self._unsubscribe = control.subscribe(self._listen)
        self._task = asyncio.create_task(control.serve())

    def _listen(self, event: object) -> None:
        self._on_event(event)
        if isinstance(event, RunFinished):
            self.reports[event.report.run_id] = event.report
            self._changed.set()
        elif isinstance(event, Disconnected):
            self.lost = event.reason
            self._changed.set()

    async def connected(self) -> None:
        deadline = asyncio.get_running_loop().time() + CONNECT_SECONDS
        while not self.control.connected:
            if asyncio.get_running_loop().time() > deadline or self._task.done():
                raise RemoteRunError("the process on the control socket does not answer")
            await asyncio.sleep(0.02)

    async def report_of(self, run_id: int | None, timeout: float | None = None) -> RunReport:
        async with asyncio.timeout(timeout):
            while True:
                if run_id is None and self.reports:
                    return next(iter(self.reports.values()))
                if run_id in self.reports:
                    return self.reports[run_id]
                if self.lost is not None:
                    raise RemoteRunError(f"lost the process that runs exports: {self.lost}")
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self._unsubscribe()
        await self.control.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def follow_remote_run(
    control: AttachedControl,
    on_event: Callable[[object], None],
    *,
    trigger: str = "manual",
    only: list[str] | None = None,
    since: str | None = None,
) -> RunReport:
    """Ask the process to start a run and follow it to its end. The first Ctrl-C (or SIGTERM)
    asks that process to cancel the run; the second stops following (KeyboardInterrupt)."""
    follower = _RunFollower(control, on_event)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    cancelling: list[asyncio.Task[object]] = []

    def on_signal() -> None:
        if not cancelling:
            cancelling.append(loop.create_task(control.cancel()))
        elif main is not None:
            main.cancel()

    try:
        await follower.connected()
        answer = await control.start_run(trigger, only=only, since=since)
        if not answer.ok:
            raise RemoteRunError(answer.message)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        try:
            return await follower.report_of(answer.run_id)
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await follower.close()


async def cancel_remote_run(control: AttachedControl) -> str:
    """Cancel the process's run and wait until it has stopped; what happened, in a line."""
    follower = _RunFollower(control, lambda event: None)
    try:
        await follower.connected()
        answer = await control.cancel()
        if not answer.ok:
            return answer.message
        report = await follower.report_of(answer.run_id, timeout=CANCEL_WAIT_SECONDS)
        return f"run {report.run_id} {report.outcome}"
    except TimeoutError:
        return "the run has not stopped yet; it stops at its next batch boundary"
    finally:
        await follower.close()


async def read_status(settings: Settings) -> StatusSnapshot:
    """The running process's status, or what the state database says when none runs."""
    control = await attach(settings.control_socket_path)
    if control is not None:
        return await control.status()
    holder = lock_holder(local_anchor(settings))
    state = StateStore(state_location(settings))
    try:
        state.use_destination(destination_info(settings).identity)  # a migrated file's rows
        recent = state.recent_runs(2)
        finished = [run for run in recent if run.finished_at is not None]
        running = [run for run in recent if run.finished_at is None]
        # A process that holds the database but serves no control socket (`run`, `resend`,
        # `retry` in a shell): named, with the run it has recorded as started.
        process = None if holder is None else ProcessInfo(holder.pid, holder.role, holder.since)
        return StatusSnapshot(
            process=process,
            run=run_started(running[0]) if process is not None and running else None,
            last_run=run_record_json(run_record(finished[0])) if finished else None,
            next_run_at=None,
            skipped_orders=state.skipped_count(),
            queue=queue_counts(state),
            exported=window_exported_count(state, settings, local_now()),
            destination=destination_info(settings),
            cluster=cluster_of(settings),
            last_verify=last_verify_of(state, settings),
        )
    finally:
        state.close()


def last_verify_of(state: StateStore, settings: Settings) -> VerifyOutcome | None:
    """The last verify of the configured destination's copy, as the state keeps it."""
    row = state.verifies.last(destination_info(settings).identity)
    return None if row is None else VerifyOutcome.of_row(row)


def run_started(row: RunRow) -> RunInProgress:
    """A run in progress as the state database knows it: started, its progress unknown."""
    return RunInProgress(
        run_id=row.run_id,
        trigger=row.trigger,
        started_at=row.started_at,
        orders_total=None,
        orders_done=0,
        sent=0,
        skipped=0,
        retried=0,
    )
