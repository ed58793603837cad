"""One run in detail (d in the run history): when, how long, its counts, its error, the orders
it skipped that are still skipped, and its log one key away (l)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from order_export_tui.service.records import COUNT_NAMES, RunRecord, SkippedOrder
from order_export_tui.tui.formatting import between, count, duration, stamp
from order_export_tui.tui.outcomes import outcome_text
from order_export_tui.tui.skipped_table import SkippedOrdersTable


def run_facts(record: RunRecord) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("Outcome", outcome_text(record.outcome))
    grid.add_row("Trigger", record.trigger)
    grid.add_row("Started", stamp(record.started_at))
    grid.add_row("Finished", stamp(record.finished_at))
    grid.add_row("Duration", duration(between(record.started_at, record.finished_at)))
    counts = ", ".join(f"{name} {count(record.counts.get(name))}" for name in COUNT_NAMES)
    grid.add_row("Counts", counts)
    grid.add_row("Error", Text(record.error, style="bold red") if record.error else "none")
    grid.add_row("Log", record.log_file or "none kept")
    return grid


class RunDetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back"),
        Binding("l,enter", "open_log", "Log", key_display="l"),
    ]

    def __init__(
        self,
        record: RunRecord,
        skipped: Sequence[SkippedOrder],
        *,
        open_log: Callable[[RunRecord], None],
    ) -> None:
        super().__init__()
        self.record = record
        self.skipped = [order for order in skipped if order.run_id == record.run_id]
        self._open_log = open_log

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="run-detail"):
            facts = Static(run_facts(self.record), id="run-facts")
            facts.border_title = f"Run {self.record.run_id}"
            yield facts
            yield SkippedOrdersTable(id="run-skipped")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"run {self.record.run_id}"
        table = self.query_one(SkippedOrdersTable)
        table.load(self.skipped)
        table.border_title = "Orders this run skipped (still skipped)"
        table.focus()

    def action_leave(self) -> None:
        self.dismiss(None)

    def action_open_log(self) -> None:
        self._open_log(self.record)
