"""A table drawn while rows were arriving shows them whole once it has measured them: Textual
kept serving the lines it drew before, cut at the old column width (a skipped order's reason
cut to "invali" on a first run; CI's snapshot of a finished run without "(got -2)")."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.geometry import Region

from order_export_tui.service.records import SkippedOrder
from order_export_tui.tui.skipped_table import SkippedOrdersTable

STAMP = "2026-11-27T09:00:00+00:00"
REASONS = [
    "invalid order: customer.email is missing",
    "invalid order: currency 'XYZ' is not an ISO 4217 code",
    "invalid order: lines[0].quantity must be positive (got -2)",
]


class TableHost(App[None]):
    CSS = "SkippedOrdersTable { height: 10; }"

    def compose(self) -> ComposeResult:
        yield SkippedOrdersTable()


def skipped(number: int) -> SkippedOrder:
    return SkippedOrder(f"SO-{number}", REASONS[number], 1, STAMP, STAMP, 1)


def shown_lines(app: App[Any]) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def test_rows_drawn_before_the_table_measured_them_are_drawn_again_whole() -> None:
    app = TableHost()
    async with app.run_test(size=(120, 12)) as pilot:
        table = app.query_one(SkippedOrdersTable)
        table.load([skipped(0), skipped(1)])
        await pilot.pause()
        table.load([skipped(0), skipped(1), skipped(2)])  # a wider reason arrives
        # A frame drawn before the table's next idle moment, as a busy dashboard draws one.
        drawn = table.render_lines(Region(0, 0, table.size.width, table.size.height))
        assert any("(go " in strip.text for strip in drawn)  # the old width, for now
        await pilot.pause()
        assert any(REASONS[2] in line for line in shown_lines(app)), shown_lines(app)
