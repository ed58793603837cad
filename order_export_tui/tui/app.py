"""The dashboard: a Textual app that shows and steers the process that runs exports through
its `ExportControl`: the service hosted in this process (run as the app's worker), or a daemon
it is attached to over the control socket. One code path serves both; the app never touches
the engine or the state database. Layers: tui -> service; nothing below knows Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.actions import ActionParseResult
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from order_export_tui.engine.runner import local_now
from order_export_tui.service.control import ExportControl, StatusSnapshot
from order_export_tui.service.control_client import Disconnected, NotAttachedError, Reattached
from order_export_tui.service.delivery import DELIVERY_FAILING, DeliveryStateChanged
from order_export_tui.service.events import FAILED, SUCCEEDED, EngineEvent
from order_export_tui.service.export_service import (
    FailureEmailOutcome,
    RunRequestSkipped,
    schedule_description,
)
from order_export_tui.service.records import RunRecord
from order_export_tui.settings import Settings, settings_to_dict
from order_export_tui.tui.confirm_screen import ConfirmScreen
from order_export_tui.tui.dashboard_screen import (
    HISTORY,
    HISTORY_LIMIT,
    SKIPPED,
    SKIPPED_LIMIT,
    DashboardScreen,
)
from order_export_tui.tui.event_feed import EngineEventFeed
from order_export_tui.tui.formatting import clock_time, count
from order_export_tui.tui.help_screen import HelpScreen, KeyHelp
from order_export_tui.tui.history_table import RunHistoryTable
from order_export_tui.tui.inputs import backfill_day, order_ids, order_ids_problem
from order_export_tui.tui.intake_status import intake_status, realtime_summary
from order_export_tui.tui.log_bridge import NotifyingLogHandler
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.messages import ConnectionChanged, RunProgressed, ServiceNotice
from order_export_tui.tui.prompt_screen import PromptScreen
from order_export_tui.tui.realtime_screen import RealtimeScreen
from order_export_tui.tui.run_detail_screen import RunDetailScreen
from order_export_tui.tui.run_progress import (
    CANCELLING,
    RunProgress,
    RunTracker,
    progress_of_record,
)
from order_export_tui.tui.settings_screen import SettingsScreen
from order_export_tui.tui.skipped_table import SkippedOrdersTable
from order_export_tui.tui.status_panel import StatusView
from order_export_tui.tui.terminal_watch import TerminalWatch

TICK_SECONDS = 1.0
NAVIGATION = frozenset(
    {"show_settings", "show_logs", "show_skipped", "show_history", "show_realtime"}
)
# Keys that start or stop a run: refused with a one-line reason when they cannot act now.
REFUSABLE = frozenset({"run_now", "cancel_run", "resend", "backfill", "retry"})
DASHBOARD_ONLY = frozenset({"resend"})


class OrderExportApp(App[int]):
    """The dashboard over `control`; `clock` and `monotonic` are injectable for tests."""

    CSS_PATH = "app.tcss"
    TITLE = "order-export"
    # Screens get -narrow / -wide and -short / -tall classes; app.tcss reflows on them.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (34, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_now", "Run", id="run_now"),
        Binding("c", "cancel_run", "Cancel", id="cancel_run"),
        # Shown in the dashboard's footer (DashboardScreen repeats them); they work everywhere.
        Binding("s", "show_settings", "Settings", id="show_settings", show=False),
        Binding("l", "show_logs", "Logs", id="show_logs", show=False),
        Binding("1", "show_history", "History", id="show_history", show=False),
        Binding("2", "show_skipped", "Skipped", id="show_skipped", show=False),
        Binding("e", "show_realtime", "Real-time events", id="show_realtime", show=False),
        Binding("R", "resend", "Resend", key_display="R", id="resend", show=False),
        Binding("question_mark,f1", "show_help", "Help", key_display="?", id="show_help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        control: ExportControl,
        clock: Callable[[], datetime] = local_now,
        monotonic: Callable[[], float] = time.monotonic,
        watch_terminal: bool = False,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.control = control
        self.clock = clock
        self.monotonic = monotonic
        self.status: StatusSnapshot | None = None
        self.connection: str | None = None  # why an attached dashboard lost its process
        self.title = f"order-export: {settings.webstore.name}"
        self._tracker = RunTracker(monotonic, settings.task.max_items_to_skip)
        self.progress = self._tracker.snapshot()
        self.feed = EngineEventFeed(
            self.post_message,
            self._tracker,
            monotonic=time.monotonic,
        )
        self._watch_terminal = watch_terminal
        self._terminal: TerminalWatch | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._log_handler: NotifyingLogHandler | None = None
        self._scheduler_problem: str | None = None
        self._shown_skipped = -1
        self.stopping = False
        self.terminal_lost: str | None = None
        self._said: dict[tuple[str, str], float] = {}  # notice -> when its toast goes away

    def get_default_screen(self) -> Screen[None]:
        return DashboardScreen(id="_default")

    @property
    def dashboard(self) -> DashboardScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, DashboardScreen)
        return screen

    # --- starting and stopping -------------------------------------------------------------

    async def on_mount(self) -> None:
        try:
            last = await self.control.recent_runs(1)
            self.status = await self.control.status()
        except NotAttachedError as error:
            last, self.connection = [], str(error)
        if last:
            self._tracker.seed(progress_of_record(last[0], self.settings.task.max_items_to_skip))
        if self.status is not None and self.status.run is not None:
            self._tracker.join(self.status.run, self.monotonic())
        self.progress = self._tracker.snapshot()
        self._unsubscribe.append(self.control.subscribe(self._on_control_event))
        self._log_handler = NotifyingLogHandler(self, asyncio.get_running_loop())
        self._log_handler.install()
        self._serve()
        self.set_interval(TICK_SECONDS, self._tick)
        if self._watch_terminal:
            self._terminal = TerminalWatch(self._on_terminal_lost)
            self._terminal.start(asyncio.get_running_loop())

    def on_ready(self) -> None:
        self._show_everything()

    def on_unmount(self) -> None:
        self.feed.close()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._log_handler is not None:
            self._log_handler.remove()
        if self._terminal is not None:
            self._terminal.stop()

    @property
    def attached(self) -> bool:
        return self.control.attached

    @property
    def run_in_progress(self) -> bool:
        return self.progress.active or (self.status is not None and self.status.run is not None)

    def _on_control_event(self, event: object) -> None:
        if isinstance(event, Disconnected | Reattached):
            self.post_message(ConnectionChanged(event))
        elif isinstance(event, RunRequestSkipped | FailureEmailOutcome):
            self.post_message(ServiceNotice(event))
        elif _is_engine_event(event):
            self.feed(event)  # type: ignore[arg-type]
        else:
            self.post_message(ServiceNotice(event))

    @work(group="scheduler", exclusive=True, exit_on_error=False)
    async def _serve(self) -> None:
        await self.control.serve()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "scheduler" and event.state == WorkerState.ERROR:
            self._scheduler_problem = f"{type(worker.error).__name__}: {worker.error}"
            self.notify(f"The scheduler stopped: {self._scheduler_problem}", severity="error")
            self._show_status()

    def shut_down(self) -> None:
        """Stop the service (the run in flight stops at its next batch boundary), then exit."""
        if self.stopping:
            return
        self.stopping = True
        if self.run_in_progress and not self.attached:
            self.notify("Stopping: the run stops at the next batch boundary…", timeout=60)
        self.run_worker(self._stop_and_exit(), group="shutdown", exclusive=True)

    async def _stop_and_exit(self) -> None:
        await self.control.stop()
        self.exit(0)

    def _on_terminal_lost(self, reason: str) -> None:
        self.terminal_lost = reason
        logging.getLogger("order_export.tui").warning("terminal lost (%s): stopping", reason)
        self.shut_down()

    def panic(self, *renderables: object) -> None:
        # The terminal driver panics when reading a dropped terminal fails; that is not a
        # crash but the end of the session: stop cleanly instead of abandoning the run.
        if self._terminal is not None and (self._terminal.lost or self._terminal.check()):
            self._terminal.declare_lost(self._terminal.reason or "the terminal is gone")
            return
        super().panic(*renderables)  # type: ignore[arg-type]

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """One notice per fact: a notice already on screen is not stacked again (a key pressed
        twice, the same error from the service and from its log)."""
        now = time.monotonic()
        key = (" ".join(message.split()), severity)
        self._said = {said: until for said, until in self._said.items() if until > now}
        if key in self._said:
            return
        self._said[key] = now + (self.NOTIFICATION_TIMEOUT if timeout is None else timeout)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def clear_notifications(self) -> None:
        self._said.clear()
        super().clear_notifications()

    # --- what arrives ------------------------------------------------------------------------

    def on_run_progressed(self, message: RunProgressed) -> None:
        previous = self.progress
        progress = self.progress = message.progress
        self._show_run()
        skipped = progress.counts.get("skipped", 0)
        if message.run_changed:
            self._reload_tables()
            self._refresh_status()
            self.refresh_bindings()
            for screen in self.screen_stack:
                if isinstance(screen, LogsScreen):
                    screen.reload_files()
            if previous.active and not progress.active:
                self._announce(progress)
        elif skipped != self._shown_skipped:
            self._reload_tables(history=False)
        self._shown_skipped = skipped

    def _announce(self, progress: RunProgress) -> None:
        counts = progress.counts
        summary = ", ".join(f"{count(counts.get(name))} {name}" for name in ("new", "updated"))
        summary += f", {count(counts.get('skipped'))} skipped"
        text = f"Run {progress.run_id} {progress.outcome}: {summary}"
        if progress.error:
            text += f". {progress.error}"
        severity = {SUCCEEDED: "information", FAILED: "error"}.get(
            progress.outcome or "", "warning"
        )
        self.notify(text, severity=severity)  # type: ignore[arg-type]

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        event = message.event
        if isinstance(event, Disconnected):
            self.connection = event.reason
            self.notify(
                f"Disconnected: {event.reason}. Showing the last picture; re-attaching when"
                " the daemon is back.",
                severity="error",
                timeout=10,
            )
        else:
            self.connection = None
            self.notify("Re-attached to the process that runs exports.")
            self._reload_tables()
            self._refresh_status()
        self._show_status()
        self.refresh_bindings()

    def on_service_notice(self, message: ServiceNotice) -> None:
        event = message.event
        if isinstance(event, RunRequestSkipped):
            self.notify(f"{event.trigger} run not started: {event.reason}", severity="warning")
        elif isinstance(event, FailureEmailOutcome):
            if event.result.sent:
                self.notify(f"Failure e-mail sent for run {event.run_id}.")
            else:
                self.notify(f"Failure e-mail NOT sent: {event.result.error}", severity="error")
        elif isinstance(event, DeliveryStateChanged):
            if event.state == DELIVERY_FAILING:
                self.notify(
                    f"Real-time delivery is failing: {event.error}", severity="error", markup=False
                )
            else:
                self.notify("Real-time delivery works again.")

    def on_run_history_table_log_requested(self, message: RunHistoryTable.LogRequested) -> None:
        path = Path(message.log_file) if message.log_file else None
        if path is None or not path.exists():
            keep = self.settings.task.max_archived_log_files
            self.notify(
                f"Run {message.run_id} has no log file any more (the newest {keep} are kept).",
                severity="warning",
            )
            return
        self.action_show_logs(path)

    def on_run_history_table_details_requested(
        self, message: RunHistoryTable.DetailsRequested
    ) -> None:
        self._command(self._show_details(message.record))

    async def _show_details(self, record: RunRecord) -> None:
        skipped = await self.control.skipped_orders(SKIPPED_LIMIT)

        def open_log(shown: RunRecord) -> None:
            self.post_message(RunHistoryTable.LogRequested(shown.run_id, shown.log_file))

        self.push_screen(RunDetailScreen(record, skipped, open_log=open_log))

    def on_skipped_orders_table_retry_requested(
        self, message: SkippedOrdersTable.RetryRequested
    ) -> None:
        self.retry(message.order_ids)

    def retry(self, order_ids: frozenset[str] | None) -> None:
        if self._refused("retry"):
            return
        self._command(self._retry(order_ids))

    async def _retry(self, order_ids: frozenset[str] | None) -> None:
        answer = await self.control.retry_skipped(None if order_ids is None else sorted(order_ids))
        if answer.ok:
            what = "every skipped order" if order_ids is None else ", ".join(sorted(order_ids))
            self.notify(f"Re-trying {what}.")
        else:
            self.notify(f"Not re-tried: {answer.message}.", severity="warning")

    def _command(self, command: Awaitable[None]) -> None:
        """Send a command to the process that runs exports; a lost process is said once."""

        async def send() -> None:
            try:
                await command
            except NotAttachedError as error:
                self.notify(f"Not done: {error}.", severity="error")

        self.run_worker(send(), group="commands")

    # --- showing -----------------------------------------------------------------------------

    def _tick(self) -> None:
        self._refresh_status()
        # A tick that lands while the app tears its screens down has nothing left to show on.
        with contextlib.suppress(NoMatches):
            self._show_status()
            # Also when idle: the real-time counters move without a run.
            self._show_run(history=self.progress.active)

    def _show_everything(self) -> None:
        self._show_status()
        self._show_run()
        self._reload_tables()
        self._shown_skipped = self.progress.counts.get("skipped", 0)

    @work(group="status", exclusive=True, exit_on_error=False)
    async def _refresh_status(self) -> None:
        try:
            status = await self.control.status()
        except NotAttachedError:
            return  # the connection's own events say so
        self.status = status
        run = status.run
        progress = self.progress
        if (
            run is not None
            and run.log_file
            and progress.run_id == run.run_id
            and progress.log_file != run.log_file
        ):
            self._tracker.set_log_file(run.log_file)
            self.progress = self._tracker.snapshot()
        self._show_status()

    def _reload_tables(self, *, history: bool = True) -> None:
        if history:
            self._reload_history()
        self._reload_skipped()

    @work(group="history", exclusive=True, exit_on_error=False)
    async def _reload_history(self) -> None:
        with contextlib.suppress(NotAttachedError):
            runs = await self.control.recent_runs(HISTORY_LIMIT)
            if self.screen_stack:
                self.dashboard.load_history(runs)

    @work(group="skipped", exclusive=True, exit_on_error=False)
    async def _reload_skipped(self) -> None:
        with contextlib.suppress(NotAttachedError):
            skipped = await self.control.skipped_orders(SKIPPED_LIMIT)
            if self.screen_stack:
                self.dashboard.load_skipped(skipped)

    def process_text(self, *, compact: bool = False) -> str:
        """Which process an attached dashboard shows; "" when it runs the exports itself.
        `compact`: the few words an 80-column status panel has room for."""
        status = self.status
        process = None if status is None else status.process
        if not self.attached:
            return ""  # this dashboard runs the exports itself
        if process is None:
            return f"not attached: {self.connection or 'connecting'}"
        if compact:  # under the label "Attached to"
            where = f"{process.role}, pid {process.pid}"
            if self.connection is not None:
                return f"{where}: DISCONNECTED ({self.connection})"
            return where
        since = clock_time(datetime.fromisoformat(process.since)) if process.since else "—"
        where = f"order-export {process.role}, pid {process.pid}, since {since}"
        if self.connection is not None:
            return f"DISCONNECTED from {where}: {self.connection}; re-attaching"
        return f"attached to {where}"

    def _show_status(self) -> None:
        if not self.screen_stack:
            return  # shutting down: a late answer has nothing left to show on
        status = self.status
        next_run = None
        if status is not None and status.next_run_at and self.connection is None:
            next_run = datetime.fromisoformat(status.next_run_at)
        view = StatusView(
            self.settings,
            self.progress,
            next_run,
            intake_status(self.settings, status),
            None if status is None else status.exported,
            self._scheduler_problem or (None if status is None else status.scheduler_problem),
            self.process_text(),
            self.process_text(compact=True),
        )
        self.dashboard.show_status(view)

    def _show_run(self, *, history: bool = False) -> None:
        if not self.screen_stack:
            return
        status = intake_status(self.settings, self.status)
        self.dashboard.show_run(self.progress, status, self.monotonic(), history=history)

    def live_log(self) -> str | None:
        return self.progress.log_file if self.progress.active else None

    # --- actions -----------------------------------------------------------------------------

    def refusal(self, action: str) -> str | None:
        """Why `action` cannot act now (one line), None when it can."""
        if action in {"run_now", "resend", "backfill", "retry"} and self.run_in_progress:
            return f"A run is already in progress (run {self.progress.run_id})."
        if action == "cancel_run":
            if not self.run_in_progress:
                return "No run to cancel."
            if self.progress.state == CANCELLING:
                return f"Run {self.progress.run_id} is already cancelling at the next batch."
        return None

    def _refused(self, action: str) -> bool:
        reason = self.refusal(action)
        if reason is not None:
            self.notify(reason, severity="warning")
        return reason is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        screen = self.screen
        if isinstance(screen, ModalScreen) and action in NAVIGATION | REFUSABLE:
            return False
        if isinstance(screen, SettingsScreen) and action in NAVIGATION | DASHBOARD_ONLY:
            return False  # Esc leaves the form (asking first when it has changes)
        if action in DASHBOARD_ONLY and not isinstance(screen, DashboardScreen):
            return False
        if action in REFUSABLE and self.refusal(action) is not None:
            return None  # shown greyed out; pressed, it says why (run_action)
        return True

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        # A greyed-out key is not silent: it says in one line why it does nothing now.
        if isinstance(action, str) and (
            default_namespace in (None, self) or action.startswith("app.")
        ):
            name = action.removeprefix("app.")
            if name in REFUSABLE and self.check_action(name, ()) is None:
                return self._refused(name)
        return await super().run_action(action, default_namespace, namespaces)

    def action_run_now(self) -> None:
        if self._refused("run_now"):
            return
        self._command(self._start("manual", "Run"))

    async def _start(
        self,
        trigger: str,
        what: str,
        *,
        only: list[str] | None = None,
        since: str | None = None,
        started: str = "",
    ) -> None:
        answer = await self.control.start_run(trigger, only=only, since=since)
        if not answer.ok:
            self.notify(f"{what} {answer.message}.", severity="warning")
        elif started:
            run = "" if answer.run_id is None else f" (run {answer.run_id})"
            self.notify(f"{started}{run}.")

    def action_resend(self) -> None:
        """R: send orders again even if unchanged; the selected skipped order is offered."""
        if self._refused("resend"):
            return
        focused = self.screen.focused
        selected = focused.selected_order_id if isinstance(focused, SkippedOrdersTable) else None

        def answered(text: str | None) -> None:
            if text:
                ids = order_ids(text)
                started = f"Re-sending {', '.join(ids)}"
                self._command(self._start("resend", "Resend", only=ids, started=started))

        prompt = PromptScreen(
            "Resend orders",
            "Send these orders to the destination again, even if unchanged"
            " (ids separated by spaces):",
            check=order_ids_problem,
            value=selected or "",
            placeholder="SO-100042",
            yes="Resend",
        )
        self.push_screen(prompt, answered)

    def action_backfill(self) -> None:
        """Every order dated on or after a day, this once, beyond the export window."""
        if self._refused("backfill"):
            return
        today = self.clock().date()

        def check(text: str) -> str | None:
            day = backfill_day(text, today)
            return day if isinstance(day, str) else None

        def answered(text: str | None) -> None:
            if text:
                started = f"Backfilling every order dated {text} or later"
                self._command(self._start("backfill", "Backfill", since=text, started=started))

        prompt = PromptScreen(
            "Backfill from a date",
            "Export every order dated on or after this day, once, beyond the export window:",
            check=check,
            placeholder="YYYY-MM-DD",
            yes="Backfill",
        )
        self.push_screen(prompt, answered)

    def action_cancel_run(self) -> None:
        if self._refused("cancel_run"):
            return

        def answered(cancel: bool | None) -> None:
            if cancel:
                self._command(self._cancel())

        question = (
            f"Cancel run {self.progress.run_id}? It stops at the next batch boundary; every batch"
            " the destination answered is recorded, the rest is sent by the next run."
        )
        self.push_screen(ConfirmScreen(question, yes="Cancel run", no="Keep running"), answered)

    async def _cancel(self) -> None:
        answer = await self.control.cancel()
        if not answer.ok:
            self.notify(f"Not cancelled: {answer.message}.", severity="warning")

    async def action_quit(self) -> None:
        if self.stopping:
            if not self.attached:
                self.notify("Abandoning the batch in flight; it is sent again next time.")
                await self.control.stop(abandon_batch=True)
            return
        screen = self.screen
        if isinstance(screen, SettingsScreen):
            screen.confirm_leave(self._confirm_quit)
        else:
            self._confirm_quit()

    def _confirm_quit(self) -> None:
        if self.attached or not self.run_in_progress:
            self.shut_down()
            return

        def answered(quit_now: bool | None) -> None:
            if quit_now:
                self.shut_down()

        question = (
            f"Run {self.progress.run_id} is in flight. Stop it at the next batch boundary and"
            " quit? (To keep exporting without a screen, use `order-export daemon`.)"
        )
        self.push_screen(ConfirmScreen(question, yes="Stop and quit", no="Keep running"), answered)

    def action_show_settings(self) -> None:
        self._go(lambda: self.push_screen(SettingsScreen(self.settings, self.save_settings)))

    def action_show_logs(self, path: Path | None = None) -> None:
        def open_logs() -> None:
            logs_dir = self.settings.logs_dir_path
            self.push_screen(LogsScreen(logs_dir, live_log=self.live_log, open_path=path))

        self._go(open_logs)

    def action_show_realtime(self) -> None:
        def summary() -> str:
            return realtime_summary(self.settings, self.status)

        self._go(lambda: self.push_screen(RealtimeScreen(self.control.recent_events, summary)))

    def action_show_history(self) -> None:
        self._go(lambda: self.dashboard.show_table(HISTORY))

    def action_show_skipped(self) -> None:
        self._go(lambda: self.dashboard.show_table(SKIPPED))

    def _go(self, then: Callable[[], object]) -> None:
        """Back to the dashboard (asking first if the settings have unsaved changes), then
        `then`."""

        def leave() -> None:
            while len(self.screen_stack) > 1:
                self.pop_screen()
            then()

        screen = self.screen
        if isinstance(screen, SettingsScreen):
            screen.confirm_leave(leave)
        else:
            leave()

    def action_show_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.help_sections()))

    async def save_settings(self, settings: Settings) -> list[str]:
        """Save through the process that runs exports (it validates by the same rules, writes
        the file atomically and applies it); the problems by key, [] once saved."""
        try:
            answer = await self.control.save_settings(settings_to_dict(settings))
        except NotAttachedError as error:
            return [f"not saved: {error}"]
        if not answer.saved:
            return answer.problems
        self.settings = settings
        if not self.progress.active:
            self.progress = replace(self.progress, skip_budget=settings.task.max_items_to_skip)
        self.title = f"order-export: {settings.webstore.name}"
        with contextlib.suppress(NotAttachedError):
            self.status = await self.control.status()
        self._show_status()
        self._show_run()
        note = f"Saved and applied. Schedule: {schedule_description(settings)}"
        if self.status is not None and self.status.next_run_at:
            note += f", next run {clock_time(datetime.fromisoformat(self.status.next_run_at))}"
        if answer.needs_restart:
            note += f". {', '.join(answer.needs_restart)} take effect after a restart"
        self.notify(note + ".")
        return []

    # --- help and the command palette --------------------------------------------------------

    def _keys(self, bindings: Iterable[BindingType]) -> list[KeyHelp]:
        rows = []
        for binding in bindings:
            if not isinstance(binding, Binding):
                continue
            keys = binding.key_display or " / ".join(
                self.get_key_display(Binding(key, binding.action)) for key in binding.key.split(",")
            )
            rows.append((keys, binding.description))
        return rows

    def help_sections(self) -> Sequence[tuple[str, Sequence[KeyHelp]]]:
        everywhere = [
            *self._keys(self.BINDINGS),
            ("f1", "Help (this screen)"),
            ("ctrl+p", "Command palette: every action by name"),
        ]
        dashboard = [
            ("j k ↑ ↓ pgup pgdn", "Move in the focused table"),
            ("g / G", "First / last row of the focused table"),
            ("/", "Filter the focused table (Enter keeps it, Esc clears it)"),
            ("esc", "Clear the focused table's filter"),
            ("tab", "Next panel"),
            ("R", "Resend orders by id (offers the selected skipped order)"),
            *self._keys(RunHistoryTable.BINDINGS),
            *self._keys(SkippedOrdersTable.BINDINGS),
            ("ctrl+p", "Backfill from a date: in the command palette"),
        ]
        logs = [
            *self._keys(LogsScreen.BINDINGS),
            ("j k ↑ ↓", "Move in the file list, scroll the log"),
            ("g / G", "Top / end of the list or log (the end follows a live log)"),
            ("tab", "Between the file list and the log"),
        ]
        settings = [*self._keys(SettingsScreen.BINDINGS), ("tab / shift+tab", "Next field")]
        realtime = [
            *self._keys(RealtimeScreen.BINDINGS),
            ("j k ↑ ↓ g G", "Move in the events (the newest is first)"),
        ]
        return [
            ("Everywhere", everywhere),
            ("Dashboard", dashboard),
            ("Real-time events", realtime),
            ("Logs", logs),
            ("Settings", settings),
        ]

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield SystemCommand("Run now", "Start an export run now (r)", self.action_run_now)
        yield SystemCommand(
            "Cancel the run", "Stop the run at the next batch boundary (c)", self.action_cancel_run
        )
        yield SystemCommand("Settings", "Edit settings.toml (s)", self.action_show_settings)
        yield SystemCommand("Logs", "Browse the per-run log files (l)", self.action_show_logs)
        yield SystemCommand(
            "Skipped orders", "Show the skipped orders (2)", self.action_show_skipped
        )
        yield SystemCommand("Run history", "Show the recent runs (1)", self.action_show_history)
        yield SystemCommand(
            "Real-time events",
            "The recent webhook events and what became of each (e)",
            self.action_show_realtime,
        )
        yield SystemCommand(
            "Re-try all skipped orders", "Send every skipped order again", lambda: self.retry(None)
        )
        yield SystemCommand(
            "Resend orders", "Send orders by id again, even if unchanged (R)", self.action_resend
        )
        yield SystemCommand(
            "Backfill from a date",
            "Export every order dated on or after a day (YYYY-MM-DD), beyond the window",
            self.action_backfill,
        )
        yield SystemCommand("Help", "Every key (? or F1)", self.action_show_help)
        if isinstance(screen, SettingsScreen):
            yield SystemCommand(
                "Save settings", "Write settings.toml and apply it", screen.action_save
            )
        if isinstance(screen, LogsScreen):
            yield SystemCommand("Search the log", "Find a word (/)", screen.action_start_search)
        yield SystemCommand("Quit", "Quit; asks while a run is in flight (q)", self.action_quit)
        for command in super().get_system_commands(screen):
            if command.title not in {"Quit", "Keys"}:
                yield command


def _is_engine_event(event: object) -> bool:
    return isinstance(event, EngineEvent.__args__)  # type: ignore[attr-defined]
