"""Where the keys lead: the screens over the dashboard (settings, logs, real-time events,
help), the dashboard's two tables, and saving the settings form through the
process that runs exports. Leaving the settings form asks first when it has changes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from order_export_tui.service.control_client import NotAttachedError
from order_export_tui.service.export_service import schedule_description
from order_export_tui.settings import Settings, settings_to_dict
from order_export_tui.tui.dashboard_screen import HISTORY, SKIPPED
from order_export_tui.tui.formatting import clock_time
from order_export_tui.tui.help_screen import HelpScreen
from order_export_tui.tui.help_sections import help_sections
from order_export_tui.tui.intake_status import realtime_summary
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.realtime_screen import RealtimeScreen
from order_export_tui.tui.settings_screen import SettingsScreen

if TYPE_CHECKING:
    from order_export_tui.tui.app import OrderExportApp

NAVIGATION = frozenset(
    {"show_settings", "show_logs", "show_skipped", "show_history", "show_realtime"}
)


class Navigator:
    def __init__(self, app: OrderExportApp) -> None:
        self.app = app

    def show_settings(self) -> None:
        app = self.app
        self.go(lambda: app.push_screen(SettingsScreen(app.settings, self.save_settings)))

    def show_logs(self, path: Path | None = None) -> None:
        app = self.app

        def open_logs() -> None:
            logs = LogsScreen(
                app.control.run_logs,
                app.settings.logs_dir_path,
                live_log=app.live_log,
                open_path=path,
            )
            app.push_screen(logs)

        self.go(open_logs)

    def show_realtime(self) -> None:
        app = self.app

        def summary() -> str:
            return realtime_summary(app.settings, app.status)

        self.go(lambda: app.push_screen(RealtimeScreen(app.control.recent_events, summary)))

    def show_history(self) -> None:
        self.go(lambda: self.app.dashboard.show_table(HISTORY))

    def show_skipped(self) -> None:
        self.go(lambda: self.app.dashboard.show_table(SKIPPED))

    def show_help(self) -> None:
        app = self.app
        if not isinstance(app.screen, HelpScreen):
            app.push_screen(HelpScreen(help_sections(app)))

    def go(self, then: Callable[[], object]) -> None:
        """Back to the dashboard (asking first if the settings have unsaved changes), then
        `then`."""
        app = self.app

        def leave() -> None:
            while len(app.screen_stack) > 1:
                app.pop_screen()
            then()

        screen = app.screen
        if isinstance(screen, SettingsScreen):
            screen.confirm_leave(leave)
        else:
            leave()

    def open_run_log(self, run_id: int, log_file: str | None) -> None:
        path = Path(log_file) if log_file else None
        if path is None or not path.exists():
            keep = self.app.settings.task.max_archived_log_files
            self.app.notify(
                f"Run {run_id} has no log file any more (the newest {keep} are kept).",
                severity="warning",
            )
            return
        self.show_logs(path)

    async def save_settings(self, settings: Settings) -> list[str]:
        """Save through the process that runs exports (it validates by the same rules, writes
        the file atomically and applies it); the problems by key, [] once saved."""
        app = self.app
        try:
            answer = await app.control.save_settings(settings_to_dict(settings))
        except NotAttachedError as error:
            return [f"not saved: {error}"]
        if not answer.saved:
            return answer.problems
        app.settings = settings
        if not app.progress.active:
            app.progress = replace(app.progress, skip_budget=settings.task.max_items_to_skip)
        app.title = f"order-export: {settings.webstore.name}"
        with contextlib.suppress(NotAttachedError):
            app.status = await app.control.status()
        app.poller.show_status()
        app.poller.show_run()
        note = f"Saved and applied. Schedule: {schedule_description(settings)}"
        if app.status is not None and app.status.next_run_at:
            note += f", next run {clock_time(datetime.fromisoformat(app.status.next_run_at))}"
        if answer.needs_restart:
            note += f". {', '.join(answer.needs_restart)} take effect after a restart"
        app.notify(note + ".")
        return []
