"""Where the keys lead: the screens over the dashboard (settings, logs, real-time events,
help), the dashboard's two tables, and saving the settings form through the
process that runs exports. Leaving the settings form asks first when it has changes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from order_export_tui.service.control_client import NotAttachedError
from order_export_tui.service.export_service import schedule_description
from order_export_tui.settings import Settings, SettingsError, settings_from_dict
from order_export_tui.tui.dashboard_screen import HISTORY, SKIPPED
from order_export_tui.tui.formatting import clock_time
from order_export_tui.tui.help_screen import HelpScreen
from order_export_tui.tui.help_sections import help_sections
from order_export_tui.tui.intake_status import realtime_summary
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.realtime_screen import RealtimeScreen
from order_export_tui.tui.settings_screen import SaveOutcome, SettingsScreen
from order_export_tui.tui.verify_screen import VerifyScreen

if TYPE_CHECKING:
    from order_export_tui.tui.app import OrderExportApp

NAVIGATION = frozenset(
    {"show_settings", "show_logs", "show_skipped", "show_history", "show_realtime"}
)


class Navigator:
    def __init__(self, app: OrderExportApp) -> None:
        self.app = app

    def show_settings(self) -> None:
        self.go(lambda: self.app.run_worker(self._open_settings(), group="settings-form"))

    async def _open_settings(self, *, replacing: bool = False) -> None:
        """The form over the settings file as it is now (read by the process that runs
        exports: a hand edit since it started shows), with the file's revision."""
        app = self.app
        try:
            view = await app.control.read_settings()
            settings = settings_from_dict(view.data, Path(view.path))
        except (NotAttachedError, SettingsError) as error:
            app.notify(f"Cannot read the settings: {error}", severity="error")
            return
        if replacing and isinstance(app.screen, SettingsScreen):
            app.pop_screen()
        form = SettingsScreen(
            settings,
            self.save_settings,
            revision=view.revision,
            file_problems=view.problems,
            reload=lambda: app.run_worker(self._open_settings(replacing=True)),
        )
        app.push_screen(form)

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

    def show_verify(self) -> None:
        control = self.app.control
        screen = VerifyScreen(lambda repair: control.verify(repair=repair))
        self.go(lambda: self.app.push_screen(screen))

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

    async def save_settings(
        self, settings: Settings, changes: dict[str, Any], revision: str
    ) -> SaveOutcome:
        """Save the changed keys through the process that runs exports (it sets them in the
        file as it is, validates the result by the same rules, writes it atomically and
        applies it)."""
        app = self.app
        try:
            answer = await app.control.save_settings(changes, revision or None)
            after = await app.control.read_settings() if answer.saved else None
        except NotAttachedError as error:
            return SaveOutcome([f"not saved: {error}"])
        if after is None:
            return SaveOutcome(answer.problems, changed_since_read=answer.changed_since_read)
        with contextlib.suppress(SettingsError):  # the file as saved: the form's keys and the rest
            settings = settings_from_dict(after.data, Path(after.path))
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
        return SaveOutcome([], revision=after.revision)
