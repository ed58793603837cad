"""The real-time screen (e): the webhook intake's state on one line, and the recent events
with what became of each; `/` filters them (by order, kind, state or reason)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from order_export_tui.service.records import RealtimeEventRecord
from order_export_tui.tui.realtime_table import EVENTS_LIMIT, RealtimeEventsTable, event_detail
from order_export_tui.tui.table_filter import TableFilter

REFRESH_SECONDS = 1.0

LoadEvents = Callable[[int], Awaitable[Sequence[RealtimeEventRecord]]]


class RealtimeScreen(Screen[None]):
    AUTO_FOCUS = "RealtimeEventsTable"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back", id="leave_realtime"),
        Binding("slash", "filter", "Filter", key_display="/", id="filter_events"),
    ]

    def __init__(self, load_events: LoadEvents, summary: Callable[[], str]) -> None:
        """`load_events(limit)`: the newest events first; `summary()`: the intake in a line."""
        super().__init__()
        self._load_events = load_events
        self._summary = summary

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="realtime-summary")
        yield TableFilter(id="realtime-filter")
        yield RealtimeEventsTable(id="realtime-events")
        yield Static(id="realtime-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "real-time events"
        self.refresh_events()
        self.set_interval(REFRESH_SECONDS, self.refresh_events)

    @work(group="realtime", exclusive=True, exit_on_error=False)
    async def refresh_events(self) -> None:
        self.query_one("#realtime-summary", Static).update(self._summary())
        events = await self._load_events(EVENTS_LIMIT)
        if self.is_attached:
            self.query_one(RealtimeEventsTable).load(events)
            self._show_detail()

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        event = self.query_one(RealtimeEventsTable).selected_event
        detail = "" if event is None else event_detail(event)
        self.query_one("#realtime-detail", Static).update(detail)

    def action_filter(self) -> None:
        self.query_one(TableFilter).open_for(self.query_one(RealtimeEventsTable))

    def action_leave(self) -> None:
        self.dismiss(None)
