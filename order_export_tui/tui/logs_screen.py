"""The log browser: per-run log files newest first, a virtual viewer, live tail, search.

The list of files comes from the process that runs exports (`ExportControl.run_logs`), so an
attached dashboard lists the daemon's logs, not whatever its own settings point at.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from order_export_tui.service.control import RunLogFile
from order_export_tui.service.control_client import NotAttachedError
from order_export_tui.tui.formatting import count, size
from order_export_tui.tui.full_lines_screen import FullLinesScreen
from order_export_tui.tui.keys import Key
from order_export_tui.tui.log_view import LogView

TAIL_POLL_SECONDS = 0.5

ListLogs = Callable[[], Awaitable[Sequence[RunLogFile]]]


class LogFileList(OptionList):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "first", "First", show=False),
        Binding("G", "last", "Last", show=False),
    ]


class LogsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back", id="leave_logs"),
        Key(
            "slash",
            "start_search",
            "Search",
            key_display="/",
            id="search_log",
            title="Search the log",
            summary="Find a word",
        ),
        Binding("n", "next_match", "Next", id="next_match"),
        Binding("N", "previous_match", "Previous", key_display="N", id="previous_match"),
        Binding("w", "full_lines", "Full lines, wrapped", show=False, id="full_lines"),
    ]

    def __init__(
        self,
        list_logs: ListLogs,
        logs_dir: Path,
        *,
        live_log: Callable[[], str | None],
        open_path: Path | None = None,
    ) -> None:
        """`list_logs()`: the run log files, newest first; `logs_dir` names their folder."""
        super().__init__()
        self._list_logs = list_logs
        self.logs_dir = logs_dir
        self._live_log = live_log
        self._shown_live: str | None = None
        self._open_path = open_path
        self._files: list[Path] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="logs-body"):
            yield LogFileList(id="log-files")
            with Vertical(id="log-pane"):
                yield LogView(id="log-view")
                yield Static(id="log-status")
                yield Input(placeholder="search (Enter: next, Esc: close)", id="log-search")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "logs"
        self.query_one("#log-files", OptionList).border_title = "Run logs"
        self.query_one("#log-search", Input).display = False
        self.reload_files(select=self._open_path)
        self.set_interval(TAIL_POLL_SECONDS, self._poll)
        self.query_one(LogView).focus()

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    # --- the file list -----------------------------------------------------------------------

    @work(group="log-list", exclusive=True, exit_on_error=False)
    async def reload_files(self, *, select: Path | None = None) -> None:
        """Ask for the list of run logs again (a run started, finished, or retention removed a
        file)."""
        try:
            files = await self._list_logs()
        except NotAttachedError:
            return  # the connection's own events say so; the list shown stays
        if not self.is_attached:
            return
        listing = self.query_one("#log-files", OptionList)
        current = self.view.path
        self._files = [Path(file.path) for file in files]
        listing.clear_options()
        live = self._live_log()
        for file in files:
            listing.add_option(Option(self._label(file, live), id=file.path))
        wanted = select or current or (self._files[0] if self._files else None)
        if wanted is not None and wanted in self._files:
            listing.highlighted = self._files.index(wanted)
            if wanted != current:
                self._open(wanted)
        elif not self._files:
            self.view.open(None)
            self._show_status()

    def _label(self, file: RunLogFile, live: str | None) -> str:
        marker = " ●" if live is not None and Path(live) == Path(file.path) else ""
        return f"{file.name}{marker}\n  {size(file.size)}"

    @on(OptionList.OptionHighlighted, "#log-files")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None and Path(event.option.id) != self.view.path:
            self._open(Path(event.option.id))

    @on(OptionList.OptionSelected, "#log-files")
    def _selected(self) -> None:
        self.view.focus()

    def _open(self, path: Path) -> None:
        live = self._live_log()
        self.view.open(path, follow=live is not None and Path(live) == path)
        self._show_status()

    # --- live tail and status ----------------------------------------------------------------

    def _poll(self) -> None:
        self.view.poll_growth()
        live = self._live_log()
        if live != self._shown_live:  # the dashboard learnt (or forgot) the running run's log
            self._shown_live = live
            self._show_status()

    @on(LogView.Indexed)
    def _indexed(self) -> None:
        self._show_status()

    def _show_status(self, note: str = "") -> None:
        view = self.view
        if view.path is None:
            text = f"no run log in {self.logs_dir}"
        else:
            lines = count(view.index.line_count)
            text = f"{view.path.name}: {lines} lines"
            if view.scanning:
                text += f", indexing {self._indexed_share(view)}"
            live = self._live_log()
            if live is not None and Path(live) == view.path:
                text += ", live"
            if note:
                text += f" · {note}"
            elif view.index.widest > view.scrollable_content_region.width:
                text += " · ← → or w: long lines in full"
        self.query_one("#log-status", Static).update(text)

    @staticmethod
    def _indexed_share(view: LogView) -> str:
        try:
            total = os.stat(view.path).st_size if view.path else 0
        except OSError:
            return "…"
        return f"{(view.index.scanned * 100 // total) if total else 100}%"

    def action_full_lines(self) -> None:
        view = self.view
        if view.path is None or not view.index.line_count:
            self.notify("No log lines to show.", severity="warning")
            return
        first = int(view.scroll_offset.y)
        shown = range(first, min(first + view.size.height, view.index.line_count))
        if view.match_line is not None and view.match_line not in shown:
            shown = range(view.match_line, view.match_line + 1)
        title = f"{view.path.name}, lines {shown.start + 1:,}-{shown.stop:,} in full"
        self.app.push_screen(FullLinesScreen(title, [(n, view.line_text(n)) for n in shown]))

    # --- search ------------------------------------------------------------------------------

    def action_start_search(self) -> None:
        search = self.query_one("#log-search", Input)
        search.display = True
        search.focus()

    @on(Input.Submitted, "#log-search")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value:
            self.view.search(event.value)
        self.view.focus()

    def action_next_match(self) -> None:
        term = self.query_one("#log-search", Input).value
        if term:
            self.view.search(term)

    def action_previous_match(self) -> None:
        term = self.query_one("#log-search", Input).value
        if term:
            self.view.search(term, backwards=True)

    @on(LogView.SearchDone)
    def _search_done(self, event: LogView.SearchDone) -> None:
        if event.line_no is None:
            self._show_status(f"{event.term!r} not found")
        else:
            self._show_status(f"{event.term!r} at line {event.line_no + 1:,}")

    def action_leave(self) -> None:
        search = self.query_one("#log-search", Input)
        if search.has_focus:
            search.display = False
            self.view.focus()
            return
        self.app.pop_screen()
