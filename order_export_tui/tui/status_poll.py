"""The status panel's facts: asked of the process that runs exports once a second (and when a
run starts or ends, or the connection comes back), shown on the dashboard with the run's
progress."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING

from textual.css.query import NoMatches

from order_export_tui.service.control_client import NotAttachedError
from order_export_tui.tui.intake_status import intake_status
from order_export_tui.tui.status_panel import StatusView

if TYPE_CHECKING:
    from order_export_tui.tui.app import OrderExportApp

TICK_SECONDS = 1.0


class StatusPoller:
    def __init__(self, app: OrderExportApp) -> None:
        self.app = app
        self.scheduler_problem: str | None = None  # why this process's scheduler stopped
        self._asking = False  # a question is on its way to the process that runs exports
        self._ask_again = False  # something changed while it was: its answer may be stale

    def tick(self) -> None:
        self.refresh()
        # A tick that lands while the app tears its screens down has nothing left to show on.
        with contextlib.suppress(NoMatches):
            self.show_status()
            # Also when idle: the real-time counters move without a run.
            self.show_run(history=self.app.progress.active)

    def refresh(self) -> None:
        """Ask for the status again. One question at a time: a slow daemon (an answer taking
        longer than a tick) must still get its answers shown, not have each one replaced by
        the next question; a refresh asked meanwhile is asked once the answer is in."""
        if self._asking:
            self._ask_again = True
            return
        self._asking = True
        self.app.run_worker(self._refresh, group="status", exit_on_error=False)

    async def _refresh(self) -> None:
        app = self.app
        try:
            while True:
                self._ask_again = False
                try:
                    status = await app.control.status()
                except NotAttachedError:
                    return  # the connection's own events say so
                app.status = status
                run = status.run
                if run is not None and run.log_file and app.progress.run_id == run.run_id:
                    app.learn_log_file(run.log_file)
                self.show_status()
                if not self._ask_again:
                    return
        finally:
            self._asking = False

    def show_status(self) -> None:
        app = self.app
        if not app.screen_stack:
            return  # shutting down: a late answer has nothing left to show on
        status = app.status
        next_run = None
        if status is not None and status.next_run_at and app.connection is None:
            next_run = datetime.fromisoformat(status.next_run_at)
        view = StatusView(
            app.settings,
            app.progress,
            next_run,
            intake_status(app.settings, status),
            None if status is None else status.exported,
            self.scheduler_problem or (None if status is None else status.scheduler_problem),
            app.process_text(),
            app.process_text(compact=True),
            "" if status is None else status.destination.identity,
            app.clock(),
        )
        app.dashboard.show_status(view)

    def show_run(self, *, history: bool = False) -> None:
        """The run's progress and counters; `history`: its row in the run history too."""
        app = self.app
        if not app.screen_stack:
            return
        intake = intake_status(app.settings, app.status)
        app.dashboard.show_run(app.progress, intake, app.monotonic(), history=history)
