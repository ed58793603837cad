"""What `order-export run` shows on stderr: live progress, then a one-screen summary; and
the console every command writes its messages to."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

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
from rich.text import Text

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

if TYPE_CHECKING:  # a type only: the control interface (and its events) load with a command
    from order_export_tui.service.control import StatusSnapshot
    from order_export_tui.service.verify_answer import VerifyOutcome

PLAIN_PROGRESS_EVERY_SECONDS = 5.0
# Runs limited to order ids someone chose; they read those ids, not a window.
CHOSEN_ORDERS_TRIGGERS = frozenset({"resend", "retry", "repair"})


def message_console() -> Console:
    """stderr for people: wrapped to a terminal's width, but one unwrapped line per message
    when stderr is a pipe or a file (grep, cron mail, journald)."""
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console.soft_wrap = True
    return console


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
                # Text, not markup: a platform's message may hold brackets.
                self.console.print(
                    Text.assemble(
                        (f"retry {event.retry}", "yellow"),
                        f" of {event.what} in {event.delay_seconds:.1f}s: {event.error}",
                    )
                )
            case ItemSkipped():
                self.console.print(
                    Text.assemble(("skipped", "yellow"), f" {event.order_id}: {event.reason}")
                )
            case CancelRequested():
                self.console.print("cancelling at the next batch boundary…")
            case RunFinished():
                self._stop()

    def _start(self, event: RunStarted) -> None:
        self._started = time.monotonic()
        self.console.print(first_line(event), highlight=False)
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


def first_line(event: RunStarted) -> str:
    """What the run reads: the chosen orders of a resend, retry or verify repair (looked up
    by id, whatever their date), else the orders of the window."""
    if event.trigger in CHOSEN_ORDERS_TRIGGERS and event.total is not None:
        return f"run {event.run_id}: {event.trigger} of {plural(event.total, 'order')}"
    total = "unknown number" if event.total is None else event.total
    return (
        f"run {event.run_id}: orders dated on or after {event.window_start:%Y-%m-%d %H:%M %z}"
        f" ({total} in the window)"
    )


def plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def print_summary(console: Console, report: RunReport) -> None:
    """One line per fact, the names in a column; a long error stays on its line."""
    colour = {SUCCEEDED: "green", FAILED: "red"}.get(report.outcome, "yellow")
    rows: list[tuple[str, str, str]] = [
        ("run", str(report.run_id), ""),
        ("outcome", report.outcome, colour),
        ("duration", f"{report.duration_seconds:.1f}s", ""),
    ]
    rows += [(name, f"{value:,}", "") for name, value in report.counts.items()]
    if report.error:
        rows.append(("error", report.error, "red"))
    rows.append(("log file", str(report.log_file), ""))
    width = max(len(name) for name, _, _ in rows)
    for name, value, style in rows:
        console.print(Text.assemble((name.ljust(width), "bold"), "  ", (value, style)))


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
    if status.destination.identity:
        noun = "order" if status.exported == 1 else "orders"
        console.print(
            f"exported: {status.exported:,} {noun} of the export window confirmed by"
            f" {status.destination.identity}",
            markup=False,
        )
    console.print(
        f"real-time queue: {status.queue.queued:,} queued, {status.queue.held:,} held",
        markup=False,
    )
    verified = status.last_verify
    if verified is not None:
        console.print(f"last verify: {verify_outcome_text(verified)}", markup=False)
    for member in status.cluster or ():  # daemons sharing a PostgreSQL state (§10)
        console.print(
            f"cluster: {member.host} pid {member.pid}, {member.role} since {member.since}",
            markup=False,
        )


def verify_outcome_text(outcome: VerifyOutcome) -> str:
    """`2026-12-06T05:00:00+00:00 (schedule): 4,210 orders checked, true` and the like."""
    head = f"{outcome.finished_at} ({outcome.trigger}): {outcome.checked:,} orders checked"
    if not outcome.readable:
        return f"{head}, the copy could not be read"
    if outcome.drift_orders:
        return f"{head}, {outcome.drift_orders:,} orders drifting"
    return f"{head}, the copy is true"


def output_console() -> Console:
    """stdout for people, unwrapped off a terminal like `message_console`."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.soft_wrap = True
    return console
