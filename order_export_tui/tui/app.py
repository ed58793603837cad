"""The dashboard: a Textual app that shows and steers the process that runs exports through
its `ExportControl`: the service hosted in this process (run as the app's worker), or a daemon
it is attached to over the control socket. One code path serves both; the app never touches
the engine or the state database. Layers: tui -> service; nothing below knows Textual.

The app keeps the lifecycle (start, stop, a lost terminal), the routing of what arrives (run
progress, the connection, the service's notices) and of the keys; the keys' work is in
`run_commands` (run, cancel, resend, backfill, retry) and `navigation` (the screens and the
settings), their declarations in `keys`, and each screen refreshes what it shows itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.actions import ActionParseResult
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from order_export_tui.clock import local_now
from order_export_tui.service.control import ExportControl, StatusSnapshot
from order_export_tui.service.control_client import Disconnected, NotAttachedError, Reattached
from order_export_tui.service.events import EngineEvent
from order_export_tui.service.records import RunRecord
from order_export_tui.settings import Settings
from order_export_tui.tui.attachment import connection_changed, process_text
from order_export_tui.tui.dashboard_screen import SKIPPED_LIMIT, DashboardScreen
from order_export_tui.tui.event_feed import EngineEventFeed
from order_export_tui.tui.history_table import RunHistoryTable
from order_export_tui.tui.keys import APP_COMMANDS, bindings
from order_export_tui.tui.log_bridge import NotifyingLogHandler
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.messages import ConnectionChanged, RunProgressed, ServiceNotice
from order_export_tui.tui.navigation import NAVIGATION, Navigator
from order_export_tui.tui.notices import NoticesShown, announce_run_end, say_service_notice
from order_export_tui.tui.palette import REPLACED, app_commands
from order_export_tui.tui.run_commands import REFUSABLE, RunCommands
from order_export_tui.tui.run_detail_screen import RunDetailScreen
from order_export_tui.tui.run_progress import RunTracker, progress_of_record
from order_export_tui.tui.settings_screen import SettingsScreen
from order_export_tui.tui.skipped_table import SkippedOrdersTable
from order_export_tui.tui.status_poll import TICK_SECONDS, StatusPoller
from order_export_tui.tui.terminal_watch import TerminalWatch

DASHBOARD_ONLY = frozenset({"resend"})


class OrderExportApp(App[int]):
    """The dashboard over `control`; `clock` and `monotonic` are injectable for tests."""

    CSS_PATH = "app.tcss"
    TITLE = "order-export"
    # Screens get -narrow / -wide and -short / -tall classes; app.tcss reflows on them.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (34, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = bindings(APP_COMMANDS)

    def __init__(
        self,
        settings: Settings,
        *,
        control: ExportControl,
        clock: Callable[[], datetime] = local_now,
        monotonic: Callable[[], float] = time.monotonic,
        watch_terminal: bool = False,
        file_problems: list[str] | None = None,
    ) -> None:
        """`file_problems`: the settings file does not validate (the attached process keeps
        its last good settings); said at the start, fixed on the settings screen."""
        super().__init__()
        self.settings = settings
        self.file_problems = list(file_problems or [])
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
        self.runs = RunCommands(self)
        self.navigator = Navigator(self)
        self.poller = StatusPoller(self)
        self._watch_terminal = watch_terminal
        self._terminal: TerminalWatch | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._log_handler: NotifyingLogHandler | None = None
        self._shown_skipped = -1
        self.stopping = False
        self.terminal_lost: str | None = None
        self._said = NoticesShown()

    def get_default_screen(self) -> Screen[None]:
        return DashboardScreen(self.control, id="_default")

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
        self._take_process_run(last, self.status)
        self.progress = self._tracker.snapshot()
        self._unsubscribe.append(self.control.subscribe(self._on_control_event))
        self._log_handler = NotifyingLogHandler(self, asyncio.get_running_loop())
        self._log_handler.install()
        self._serve()
        self.set_interval(TICK_SECONDS, self.poller.tick)
        if self._watch_terminal:
            self._terminal = TerminalWatch(self._on_terminal_lost)
            self._terminal.start(asyncio.get_running_loop())

    def on_ready(self) -> None:
        self.poller.show_status()
        self.poller.show_run()
        self.reload_tables()
        self._shown_skipped = self.progress.counts.get("skipped", 0)
        if self.file_problems:
            self.notify(
                "The settings file is not valid; the process keeps its last good settings."
                " Press s to fix it: " + "; ".join(self.file_problems),
                severity="error",
                timeout=30,
                markup=False,
            )

    def on_unmount(self) -> None:
        self.feed.close()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._log_handler is not None:
            self._log_handler.remove()
        if self._terminal is not None:
            self._terminal.stop()

    def _take_process_run(self, last: list[RunRecord], status: StatusSnapshot | None) -> None:
        """The run as the process knows it: the one it runs now, else its last recorded one."""
        if last:
            self._tracker.seed(progress_of_record(last[0], self.settings.task.max_items_to_skip))
        if status is not None and status.run is not None:
            self._tracker.join(status.run, self.monotonic())

    def resync_run(self) -> None:
        """After a re-attach the process's word replaces the run this dashboard followed: a
        killed daemon's run sent no end, and the new daemon's history says it failed."""
        self.run_worker(self._resync_run, group="resync", exclusive=True, exit_on_error=False)

    async def _resync_run(self) -> None:
        try:
            last = await self.control.recent_runs(1)
            self.status = await self.control.status()
        except NotAttachedError:
            return  # lost again: the connection's own events say so
        self._take_process_run(last, self.status)
        # As a run's end arrives: panels, tables and keys follow, and a run that ended is said.
        self.post_message(RunProgressed(self._tracker.snapshot(), run_changed=True))

    @property
    def attached(self) -> bool:
        return self.control.attached

    @property
    def run_in_progress(self) -> bool:
        return self.progress.active or (self.status is not None and self.status.run is not None)

    @work(group="scheduler", exclusive=True, exit_on_error=False)
    async def _serve(self) -> None:
        await self.control.serve()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "scheduler" and event.state == WorkerState.ERROR:
            problem = f"{type(worker.error).__name__}: {worker.error}"
            self.poller.scheduler_problem = problem
            self.notify(f"The scheduler stopped: {problem}", severity="error")
            self.poller.show_status()

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
        shown_for = self.NOTIFICATION_TIMEOUT if timeout is None else timeout
        if self._said.again(message, severity, shown_for):
            return
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def clear_notifications(self) -> None:
        self._said.clear()
        super().clear_notifications()

    # --- what arrives ------------------------------------------------------------------------

    def _on_control_event(self, event: object) -> None:
        if isinstance(event, Disconnected | Reattached):
            self.post_message(ConnectionChanged(event))
        elif _is_engine_event(event):
            self.feed(event)  # type: ignore[arg-type]
        else:
            self.post_message(ServiceNotice(event))

    def on_run_progressed(self, message: RunProgressed) -> None:
        previous = self.progress
        progress = self.progress = message.progress
        self.poller.show_run()
        skipped = progress.counts.get("skipped", 0)
        if message.run_changed:
            self.reload_tables()
            self.poller.refresh()
            self.refresh_bindings()
            for screen in self.screen_stack:
                if isinstance(screen, LogsScreen):
                    screen.reload_files()
            if previous.active and not progress.active:
                announce_run_end(self, progress)
        elif skipped != self._shown_skipped:
            self.reload_tables(history=False)
        self._shown_skipped = skipped

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        connection_changed(self, message.event)

    def on_service_notice(self, message: ServiceNotice) -> None:
        say_service_notice(self, message.event)

    def on_run_history_table_log_requested(self, message: RunHistoryTable.LogRequested) -> None:
        self.navigator.open_run_log(message.run_id, message.log_file)

    def on_run_history_table_details_requested(
        self, message: RunHistoryTable.DetailsRequested
    ) -> None:
        self.runs.send(self._show_details(message.record))

    async def _show_details(self, record: RunRecord) -> None:
        skipped = await self.control.skipped_orders(SKIPPED_LIMIT)

        def open_log(shown: RunRecord) -> None:
            self.post_message(RunHistoryTable.LogRequested(shown.run_id, shown.log_file))

        self.push_screen(RunDetailScreen(record, skipped, open_log=open_log))

    def on_skipped_orders_table_retry_requested(
        self, message: SkippedOrdersTable.RetryRequested
    ) -> None:
        self.runs.retry(message.order_ids)

    # --- showing -----------------------------------------------------------------------------

    def reload_tables(self, *, history: bool = True) -> None:
        if self.screen_stack:
            self.dashboard.reload_tables(history=history)

    def learn_log_file(self, log_file: str) -> None:
        """The running run's log file, once the process that runs it says where it is."""
        if self.progress.log_file != log_file:
            self._tracker.set_log_file(log_file)
            self.progress = self._tracker.snapshot()

    def process_text(self, *, compact: bool = False) -> str:
        """Which process an attached dashboard shows; "" when it runs the exports itself."""
        return process_text(
            self.status, attached=self.attached, connection=self.connection, compact=compact
        )

    def live_log(self) -> str | None:
        return self.progress.log_file if self.progress.active else None

    # --- the keys ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        screen = self.screen
        if isinstance(screen, ModalScreen) and action in NAVIGATION | REFUSABLE:
            return False
        if isinstance(screen, SettingsScreen) and action in NAVIGATION | DASHBOARD_ONLY:
            return False  # Esc leaves the form (asking first when it has changes)
        if action in DASHBOARD_ONLY and not isinstance(screen, DashboardScreen):
            return False
        if action in REFUSABLE and self.runs.refusal(action) is not None:
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
                return self.runs.refused(name)
        return await super().run_action(action, default_namespace, namespaces)

    def action_run_now(self) -> None:
        self.runs.run_now()

    def action_cancel_run(self) -> None:
        self.runs.cancel()

    def action_resend(self) -> None:
        self.runs.resend()

    def action_backfill(self) -> None:
        self.runs.backfill()

    def action_retry_skipped(self) -> None:
        self.runs.retry(None)

    async def action_quit(self) -> None:
        await self.runs.quit()

    def action_show_settings(self) -> None:
        self.navigator.show_settings()

    def action_show_logs(self, path: Path | None = None) -> None:
        self.navigator.show_logs(path)

    def action_show_realtime(self) -> None:
        self.navigator.show_realtime()

    def action_show_history(self) -> None:
        self.navigator.show_history()

    def action_show_skipped(self) -> None:
        self.navigator.show_skipped()

    def action_show_help(self) -> None:
        self.navigator.show_help()

    def action_show_verify(self) -> None:
        self.navigator.show_verify()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from app_commands(self, screen)
        for command in super().get_system_commands(screen):
            if command.title not in REPLACED:
                yield command


def _is_engine_event(event: object) -> bool:
    return isinstance(event, EngineEvent.__args__)  # type: ignore[attr-defined]
