"""The run history: recent runs with start, duration, outcome and counters; Enter opens the
run's log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from order_export_tui.service.records import RunRecord
from order_export_tui.tui.formatting import between, count, duration, short_stamp
from order_export_tui.tui.list_table import ListTable
from order_export_tui.tui.outcomes import outcome_text

HISTORY_LIMIT = 100
# What an 80-column terminal must show comes first: when, how it ended, what it skipped;
# the rest scrolls in (← →).
COUNTS_SHOWN = ("skipped", "new", "updated", "unchanged", "retried", "read", "cancelled")
COLUMNS = [
    ("when", 14),
    ("outcome", 11),
    *((name, max(len(name), 7)) for name in COUNTS_SHOWN),
    ("duration", 8),
    ("trigger", 9),
    ("run", 5),
]


class RunHistoryTable(ListTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        # In the help (?): the 80-column footer keeps its room for the screens' keys.
        Binding("enter", "select_cursor", "Open log", show=False, id="open_log"),
        Binding("d", "details", "Run details", show=False, id="run_details"),
    ]
    noun = "run"

    class LogRequested(Message):
        def __init__(self, run_id: int, log_file: str | None) -> None:
            super().__init__()
            self.run_id = run_id
            self.log_file = log_file

    class DetailsRequested(Message):
        def __init__(self, record: RunRecord) -> None:
            super().__init__()
            self.record = record

    def action_details(self) -> None:
        record = self._records.get(self.selected_key or "")
        if record is None:
            self.notify("No run to show yet.", severity="warning")
            return
        self.post_message(self.DetailsRequested(record))

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._records: dict[str, RunRecord] = {}

    def on_mount(self) -> None:
        self.border_title = "Run history"
        # Fixed widths: the table does not jump as a run goes from "running" to its outcome.
        for label, width in COLUMNS:
            self.add_column(label, key=label, width=width)

    def load(self, records: Sequence[RunRecord]) -> None:
        """The newest run first; the cursor follows the newest run unless the operator moved
        it to an older one."""
        self._records = {str(record.run_id): record for record in records}
        rows = [
            (
                str(record.run_id),
                [
                    short_stamp(record.started_at),
                    outcome_text(record.outcome),
                    *(count(record.counts.get(name)) for name in COUNTS_SHOWN),
                    duration(between(record.started_at, record.finished_at)),
                    record.trigger,
                    str(record.run_id),
                ],
            )
            for record in records
        ]
        self.set_rows(rows, follow_top=True)

    def show_live(self, run_id: int, counts: Mapping[str, int], elapsed: float | None) -> None:
        """The running run's row follows its progress between reloads."""
        key = str(run_id)
        if key not in self._records or key not in self.rows:
            return
        self.update_cell(key, "duration", duration(elapsed))
        for name in COUNTS_SHOWN:
            self.update_cell(key, name, count(counts.get(name)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        record = self._records.get(str(event.row_key.value))
        if record is not None:
            self.post_message(self.LogRequested(record.run_id, record.log_file))
