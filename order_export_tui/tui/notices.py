"""Notices: one per fact; a run's end in one line; the service's own news (a scheduled run
that did not start, the failure e-mail's fate, real-time delivery failing and recovering)."""

from __future__ import annotations

import time

from textual.app import App
from textual.notifications import SeverityLevel

from order_export_tui.service.events import (
    DELIVERY_FAILING,
    FAILED,
    SUCCEEDED,
    DeliveryStateChanged,
    FailureEmailOutcome,
    RunRequestSkipped,
    VerifyFinished,
)
from order_export_tui.service.export_service import OrdersAnswer
from order_export_tui.tui.formatting import count
from order_export_tui.tui.run_progress import RunProgress


def announce_run_end(app: App[object], progress: RunProgress) -> None:
    """The run that just ended: its outcome, what it sent and skipped, its error; a resend's
    or retry's, each chosen order's outcome as `order-export resend` prints it."""
    if progress.answer is not None:
        announce_orders(app, progress.answer)
        return
    counts = progress.counts
    summary = ", ".join(f"{count(counts.get(name))} {name}" for name in ("new", "updated"))
    if counts.get("cancelled"):
        summary += f", {count(counts.get('cancelled'))} cancelled"
    summary += f", {count(counts.get('skipped'))} skipped"
    text = f"Run {progress.run_id} {progress.outcome}: {summary}"
    if progress.error:
        text += f". {progress.error}"
    severity = {SUCCEEDED: "information", FAILED: "error"}.get(progress.outcome or "", "warning")
    app.notify(text, severity=severity)  # type: ignore[arg-type]


def announce_orders(app: App[object], answer: OrdersAnswer) -> None:
    """`1 of 2 orders confirmed (run 4 succeeded)`, then one line per order; a warning unless
    every order is confirmed (where the CLI exits 1)."""
    text = "\n".join([answer.message, *answer.order_lines()])
    failed = answer.report is not None and answer.report.outcome == FAILED
    severity = "information" if answer.all_confirmed else "error" if failed else "warning"
    app.notify(text, severity=severity, markup=False)  # a reason may hold brackets


def say_service_notice(app: App[object], event: object) -> None:
    if isinstance(event, RunRequestSkipped):
        app.notify(f"{event.trigger} run not started: {event.reason}", severity="warning")
    elif isinstance(event, FailureEmailOutcome):
        if event.result.sent:
            app.notify(f"Failure e-mail sent for run {event.run_id}.")
        else:
            app.notify(f"Failure e-mail NOT sent: {event.result.error}", severity="error")
    elif isinstance(event, DeliveryStateChanged):
        if event.state == DELIVERY_FAILING:
            app.notify(
                f"Real-time delivery is failing: {event.error}", severity="error", markup=False
            )
        else:
            app.notify("Real-time delivery works again.")
    elif isinstance(event, VerifyFinished) and event.answer.trigger != "manual":
        # A manual verify shows its answer on its own screen; a scheduled one says it here.
        answer = event.answer
        severity: SeverityLevel = "information" if answer.in_sync else "warning"
        app.notify(f"Scheduled verify: {answer.summary()}", severity=severity, markup=False)


class NoticesShown:
    """The notices on screen, so that one already shown is not stacked again (a key pressed
    twice, the same error from the service and from its log)."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], float] = {}  # notice -> when its toast goes away

    def again(self, message: str, severity: str, shown_for: float) -> bool:
        """True when this notice is on screen already; else it is noted as shown."""
        now = time.monotonic()
        key = (" ".join(message.split()), severity)
        self._until = {said: until for said, until in self._until.items() if until > now}
        if key in self._until:
            return True
        self._until[key] = now + shown_for
        return False

    def clear(self) -> None:
        self._until.clear()
