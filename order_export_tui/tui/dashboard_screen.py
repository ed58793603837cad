"""The main screen: status, batch progress and counters on top, run history and skipped
orders below. Short terminals show one of the two tables at a time (1 / 2); `/` filters the
focused table. The screen reloads its tables itself from the control interface; the app says
when (a run started or finished, the connection came back)."""

from __future__ import annotations

import contextlib
from typing import ClassVar

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from order_export_tui.service.control import ExportControl
from order_export_tui.service.control_client import NotAttachedError
from order_export_tui.service.records import RunRecord, SkippedOrder
from order_export_tui.tui.counters_panel import CountersPanel
from order_export_tui.tui.history_table import HISTORY_LIMIT, RunHistoryTable

__all__ = ["HISTORY_LIMIT", "SKIPPED_LIMIT"]
from order_export_tui.tui.intake_status import IntakeStatus
from order_export_tui.tui.keys import APP_COMMANDS, footer_repeats
from order_export_tui.tui.list_table import ListTable
from order_export_tui.tui.progress_panel import ProgressPanel
from order_export_tui.tui.run_progress import RunProgress
from order_export_tui.tui.size_hint import SizeHint
from order_export_tui.tui.skipped_table import SKIPPED_LIMIT, SkippedOrdersTable
from order_export_tui.tui.status_panel import StatusPanel, StatusView
from order_export_tui.tui.table_filter import TableFilter

HISTORY = "history"
SKIPPED = "skipped"


class DashboardScreen(Screen[None]):
    AUTO_FOCUS = "RunHistoryTable"

    BINDINGS: ClassVar[list[BindingType]] = [
        # The app's navigation keys, which only this screen's footer shows.
        *footer_repeats(APP_COMMANDS),
        # In the help (?) rather than the footer, which has no room left at 80 columns.
        Binding(
            "slash",
            "filter",
            "Filter",
            key_display="/",
            show=False,
            id="filter_table",
            tooltip="Filter the focused table (Enter keeps it, Esc clears it)",
        ),
    ]

    def __init__(self, control: ExportControl, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.control = control

    def compose(self) -> ComposeResult:
        yield Header()
        yield SizeHint(id="size-hint")  # first: the panels below it may not all fit
        with Horizontal(id="overview"):
            yield StatusPanel(id="status")
            with Vertical(id="run-column"):
                yield ProgressPanel(id="progress")
                yield CountersPanel(id="counters")
        yield Static(id="table-switch")
        yield TableFilter(id="table-filter")
        with Vertical(id="tables", classes="-show-history"):
            yield RunHistoryTable(id="history")
            yield SkippedOrdersTable(id="skipped")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._show_switch()
        self.query_one(SizeHint).show_for(self.app.size)

    def on_resize(self, event: events.Resize) -> None:
        self.query_one(SizeHint).show_for(event.size)

    # --- what the app pushes in ----------------------------------------------------------

    def show_status(self, view: StatusView) -> None:
        # A screen still composing (or already closing) has no panels; the next tick shows it.
        with contextlib.suppress(NoMatches):
            self.query_one(StatusPanel).show(view)

    def show_run(
        self, progress: RunProgress, intake: IntakeStatus, now: float, *, history: bool = False
    ) -> None:
        """`history`: also the running run's row in the history (a costlier repaint, so the
        app asks for it once a second, not with every progress update)."""
        with contextlib.suppress(NoMatches):
            self.query_one(ProgressPanel).show(progress, now)
            self.query_one(CountersPanel).show(progress, intake)
        if history and progress.active and progress.run_id is not None:
            with contextlib.suppress(NoMatches):
                table = self.query_one(RunHistoryTable)
                table.show_live(progress.run_id, progress.counts, progress.elapsed(now))

    def reload_tables(self, *, history: bool = True) -> None:
        """Read the run history (unless `history` is False) and the skipped orders again."""
        if history:
            self._reload_history()
        self._reload_skipped()

    @work(group="history", exclusive=True, exit_on_error=False)
    async def _reload_history(self) -> None:
        with contextlib.suppress(NotAttachedError):
            self.load_history(await self.control.recent_runs(HISTORY_LIMIT))

    @work(group="skipped", exclusive=True, exit_on_error=False)
    async def _reload_skipped(self) -> None:
        with contextlib.suppress(NotAttachedError):
            self.load_skipped(await self.control.skipped_orders(SKIPPED_LIMIT))

    def load_history(self, runs: list[RunRecord]) -> None:
        with contextlib.suppress(NoMatches):
            self.query_one(RunHistoryTable).load(runs)

    def load_skipped(self, skipped: list[SkippedOrder]) -> None:
        with contextlib.suppress(NoMatches):
            self.query_one(SkippedOrdersTable).load(skipped)

    # --- the two tables ------------------------------------------------------------------

    def show_table(self, which: str) -> None:
        """Bring the run history or the skipped orders forward and focus it."""
        tables = self.query_one("#tables", Vertical)
        tables.set_class(which == HISTORY, "-show-history")
        tables.set_class(which == SKIPPED, "-show-skipped")
        table = self.query_one(RunHistoryTable if which == HISTORY else SkippedOrdersTable)
        table.focus()
        self._show_switch()

    def _show_switch(self) -> None:
        tables = self.query_one("#tables", Vertical)
        shown = SKIPPED if tables.has_class("-show-skipped") else HISTORY
        history = "[reverse] 1 run history [/]" if shown == HISTORY else " 1 run history "
        skipped = "[reverse] 2 skipped orders [/]" if shown == SKIPPED else " 2 skipped orders "
        self.query_one("#table-switch", Static).update(f"{history} {skipped}")

    # --- the filter ----------------------------------------------------------------------

    def _table_to_filter(self) -> ListTable:
        focused = self.focused
        if isinstance(focused, ListTable):
            return focused
        tables = self.query_one("#tables", Vertical)
        return self.query_one(
            SkippedOrdersTable if tables.has_class("-show-skipped") else RunHistoryTable
        )

    def action_filter(self) -> None:
        """`/`: type to keep the rows of the focused table that contain the text."""
        self.query_one(TableFilter).open_for(self._table_to_filter())
