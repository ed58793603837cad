"""What `order-export run` shows on stderr: live progress, then a one-screen summary."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from order_export_tui.engine.events import (
    FAILED,
    SUCCEEDED,
    BatchFinished,
    CancelRequested,
    EngineEvent,
    ItemSkipped,
    RetryScheduled,
    RunFinished,
    RunReport,
    RunStarted,
)
from order_export_tui.service.control import StatusSnapshot

PLAIN_PROGRESS_EVERY_SECONDS = 5.0


class RunDisplay:
    """An engine subscriber drawing a progress bar (or, off a terminal, plain lines)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started = time.monotonic()
        self._last_plain = 0.0

    def handle(self, event: EngineEvent) -> None:
        match event:
            case RunStarted():
                self._start(event)
            case BatchFinished():
                self._advance(event)
            case RetryScheduled():
                self.console.print(
                    f"[yellow]retry {event.retry}[/] of {event.what} in"
                    f" {event.delay_seconds:.1f}s: {event.error}",
                    markup=True,
                    highlight=False,
                )
            case ItemSkipped():
                self.console.print(
                    f"[yellow]skipped[/] {event.order_id}: {event.reason}", highlight=False
                )
            case CancelRequested():
                self.console.print("cancelling at the next batch boundary…")
            case RunFinished():
                self._stop()

    def _start(self, event: RunStarted) -> None:
        self._started = time.monotonic()
        self.console.print(
            f"run {event.run_id}: orders dated on or after {event.window_start:%Y-%m-%d %H:%M %z}"
            f" ({'unknown number' if event.total is None else event.total} in the window)",
            highlight=False,
        )
        if not self.console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task("export", total=event.total, rate="")
        self._progress.start()

    def _advance(self, event: BatchFinished) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = f"{event.processed / elapsed:,.0f} orders/s"
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=event.processed, rate=rate)
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_PROGRESS_EVERY_SECONDS:
            self._last_plain = now
            of_total = "" if event.total is None else f" of {event.total}"
            self.console.print(f"{event.processed}{of_total} orders processed, {rate}")

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def print_summary(console: Console, report: RunReport) -> None:
    colour = {SUCCEEDED: "green", FAILED: "red"}.get(report.outcome, "yellow")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("run", str(report.run_id))
    table.add_row("outcome", f"[{colour}]{report.outcome}[/]")
    table.add_row("duration", f"{report.duration_seconds:.1f}s")
    for name, value in report.counts.items():
        table.add_row(name, f"{value:,}")
    if report.error:
        table.add_row("error", f"[red]{report.error}[/]")
    table.add_row("log file", str(report.log_file))
    console.print(table)


def print_status(console: Console, status: StatusSnapshot) -> None:
    """`order-export status`: what the task is doing now, in a few lines."""
    process = status.process
    if process is None:
        console.print("process: none runs exports (read from the state database)", markup=False)
    else:
        console.print(
            f"process: order-export {process.role}, pid {process.pid}, since {process.since}",
            markup=False,
        )
    run = status.run
    if run is None:
        console.print("run: none in progress", markup=False)
    else:
        of = "?" if run.orders_total is None else f"{run.orders_total:,}"
        console.print(
            f"run: {run.run_id} ({run.trigger}) since {run.started_at}: {run.orders_done:,} of"
            f" {of} orders, {run.sent:,} sent, {run.skipped:,} skipped, {run.retried:,} retried"
            + (" (cancelling)" if run.cancelling else ""),
            markup=False,
        )
    last = status.last_run
    if last is None:
        console.print("last run: none yet", markup=False)
    else:
        error = f": {last['error']}" if last.get("error") else ""
        console.print(
            f"last run: {last['run_id']} {last['outcome']} at {last['finished_at']}{error}",
            markup=False,
        )
    console.print(f"next run: {status.next_run_at or 'none scheduled'}", markup=False)
    console.print(f"skipped orders: {status.skipped_orders:,}", markup=False)
    console.print(
        f"real-time queue: {status.queue.queued:,} queued, {status.queue.held:,} held",
        markup=False,
    )
