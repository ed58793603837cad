"""The filter line under a list: what is typed keeps the rows of its table that contain it;
Enter keeps the filter, Esc clears it, and either way the table has the focus again."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.widgets import Input

from order_export_tui.tui.list_table import ListTable


class TableFilter(Input):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear", "Clear filter")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="filter (Enter: keep, Esc: clear)", id=id)
        self.display = False
        self.table: ListTable | None = None

    def open_for(self, table: ListTable) -> None:
        self.table = table
        what = str(table.border_title or table.noun + "s").lower()
        self.placeholder = f"filter {what} (Enter: keep, Esc: clear)"
        self.value = table.filter_text
        self.display = True
        self.focus()

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        if self.table is not None:
            self.table.set_filter(event.value)

    @on(Input.Submitted)
    def _kept(self, event: Input.Submitted) -> None:
        event.stop()
        self._close()

    def action_clear(self) -> None:
        if self.table is not None:
            self.table.set_filter("")
        self._close()

    def _close(self) -> None:
        self.display = False
        if self.table is not None:
            self.table.focus()
