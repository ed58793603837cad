"""A DataTable that draws its rows again once it has measured them.

Textual measures the rows added to a table on its next idle moment (an auto-width column grows
to its widest cell) but keeps the lines it drew before that, keyed by a count that measuring
does not move: lines drawn in between stay on screen at the old widths until something else
changes. The dashboard showed a skipped order's reason cut to "invali", and CI's snapshot of a
finished run cut "(got -2)" off the third skipped order's reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import DataTable
from textual.widgets.data_table import CellType, RowKey


class SettledTable(DataTable[CellType]):
    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        before = self._column_widths()
        super()._update_dimensions(new_rows)
        if self._column_widths() != before:
            self._clear_caches()
            self.refresh()

    def _column_widths(self) -> list[int]:
        return [column.content_width for column in self.columns.values()]
