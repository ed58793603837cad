"""The skipped orders: id, reason, attempts, last tried; keys to re-try one or all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message

from order_export_tui.service.records import SkippedOrder
from order_export_tui.tui.formatting import stamp
from order_export_tui.tui.list_table import ListTable

SKIPPED_LIMIT = 1000


class SkippedOrdersTable(ListTable):
    noun = "order"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "retry_selected", "Retry order", id="retry_selected"),
        Binding("a", "retry_all", "Retry all", id="retry_all"),
    ]

    class RetryRequested(Message):
        """Re-try these orders (None: every skipped order)."""

        def __init__(self, order_ids: frozenset[str] | None) -> None:
            super().__init__()
            self.order_ids = order_ids

    def on_mount(self) -> None:
        self.border_title = "Skipped orders"
        self.add_column("order", key="order", width=14)
        self.add_column("attempts", key="attempts", width=8)
        self.add_column("last tried", key="last_tried", width=19)
        self.add_column("reason", key="reason")

    def load(self, orders: Sequence[SkippedOrder]) -> None:
        self.set_rows(
            [
                (
                    order.order_id,
                    [order.order_id, str(order.attempts), stamp(order.last_tried_at), order.reason],
                )
                for order in orders
            ]
        )

    @property
    def selected_order_id(self) -> str | None:
        return self.selected_key

    def action_retry_selected(self) -> None:
        order_id = self.selected_order_id
        if order_id is None:
            self.notify("No skipped order to re-try.", severity="warning")
            return
        self.post_message(self.RetryRequested(frozenset({order_id})))

    def action_retry_all(self) -> None:
        if not self._all_rows:
            self.notify("No skipped order to re-try.", severity="warning")
            return
        self.post_message(self.RetryRequested(None))
