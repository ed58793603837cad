"""A table of rows the operator moves in as in less, vim, k9s or lazygit: j / k and the arrows,
g / G to the top and the end, and a filter (`/` on the dashboard) that keeps the rows whose
text contains what was typed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from order_export_tui.tui.settled_table import SettledTable

Cell = str | Text
Row = tuple[str, Sequence[Cell]]  # (row key, cells)


def row_matches(cells: Sequence[Cell], needle: str) -> bool:
    """Case-insensitive: any cell contains `needle` (an empty needle keeps every row)."""
    needle = needle.strip().casefold()
    if not needle:
        return True
    return any(needle in str(cell).casefold() for cell in cells)


class ListTable(SettledTable[Cell]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "End", show=False),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            show=False,
            id="clear_filter",
            tooltip="Clear the focused table's filter",
        ),
    ]

    noun = "row"  # what one row is, for the subtitle: "3 of 10 orders"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._all_rows: list[Row] = []
        self.filter_text = ""

    @property
    def shown_keys(self) -> list[str]:
        return [key for key, _ in self._all_rows if key in self.rows]

    def set_rows(self, rows: Sequence[Row], *, follow_top: bool = False) -> None:
        """Replace the rows; the cursor stays on the row it was on (or on the first row when
        `follow_top` and the cursor was on the first row)."""
        self._all_rows = list(rows)
        self._show_rows(follow_top=follow_top)

    def set_filter(self, text: str) -> None:
        if text == self.filter_text:
            return
        self.filter_text = text
        self._show_rows()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter" and not self.filter_text:
            return False  # Esc goes on to the screen (back, close)
        return super().check_action(action, parameters)

    def action_clear_filter(self) -> None:
        self.set_filter("")

    def _show_rows(self, *, follow_top: bool = False) -> None:
        selected = self.selected_key
        was_on_top = self.row_count == 0 or self.cursor_row == 0
        self.clear()
        for key, cells in self._all_rows:
            if row_matches(cells, self.filter_text):
                self.add_row(*cells, key=key)
        if follow_top and was_on_top:
            self.move_cursor(row=0)
        elif selected is not None and selected in self.rows:
            self.move_cursor(row=self.get_row_index(selected))
        self._show_subtitle()

    def _show_subtitle(self) -> None:
        total = len(self._all_rows)
        plural = "" if total == 1 else "s"
        if self.filter_text.strip():
            self.border_subtitle = (
                f"/{self.filter_text.strip()}: {self.row_count:,} of {total:,} {self.noun}{plural}"
            )
        else:
            self.border_subtitle = f"{total:,} {self.noun}{plural}" if total else ""

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        value = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return None if value is None else str(value)
