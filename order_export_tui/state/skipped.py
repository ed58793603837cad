"""Skipped orders: those a run could not send, with why and how often it was tried."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from order_export_tui.state.backend import StateConnection


@dataclass(frozen=True, slots=True)
class SkippedOrderRow:
    """One order of the `skipped_order` table."""

    order_id: str
    reason: str
    attempts: int
    first_skipped_at: str
    last_tried_at: str
    run_id: int | None


class SkippedOrders:
    """The `skipped_order` table."""

    def __init__(self, db: StateConnection) -> None:
        self._db = db

    def skipped_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM skipped_order").fetchone()[0])

    def skipped_orders(self, limit: int | None = None) -> list[SkippedOrderRow]:
        sql = (
            "SELECT order_id, reason, attempts, first_skipped_at, last_tried_at, run_id"
            " FROM skipped_order ORDER BY last_tried_at DESC, order_id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [SkippedOrderRow(*row) for row in self._db.execute(sql)]

    def skipped_order_ids(self, order_ids: Sequence[str] | None = None) -> list[str]:
        """The skipped orders' ids (in id order), all of them or those among `order_ids`."""
        if order_ids is None:
            rows = self._db.execute("SELECT order_id FROM skipped_order ORDER BY order_id")
            return [row[0] for row in rows]
        found = self._db.rows_for_ids("SELECT order_id FROM skipped_order", list(order_ids))
        return sorted(row[0] for row in found)

    def forget_skipped(self, order_ids: Iterable[str]) -> None:
        """Take orders off the skipped list (they no longer exist in the ERP, or they need
        no export any more)."""
        with self._db.transaction() as db:
            # Only those on the list: a batch clears a hundred ids that are almost never there,
            # and one lookup costs a PostgreSQL state far less than a hundred deletes.
            listed = db.rows_for_ids("SELECT order_id FROM skipped_order", list(order_ids))
            db.executemany("DELETE FROM skipped_order WHERE order_id = ?", list(listed))

    def record_skipped(self, skipped: dict[str, str], *, stamp: str, run_id: int | None) -> None:
        """Put orders on the skipped list (order id -> reason), tried at `stamp`; one
        already there counts one more attempt."""
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO skipped_order (order_id, reason, attempts, first_skipped_at,"
                " last_tried_at, run_id) VALUES (?, ?, 1, ?, ?, ?)"
                " ON CONFLICT (order_id) DO UPDATE SET reason = excluded.reason,"
                " attempts = skipped_order.attempts + 1,"
                " last_tried_at = excluded.last_tried_at, run_id = excluded.run_id",
                [(order_id, reason, stamp, stamp, run_id) for order_id, reason in skipped.items()],
            )
