"""Simulated ERP activity between runs: shipping an order, changing a payment status,
cancelling an order (deleting it), and a round of cancellations and refunds
(`simulate_activity`, what `order-export demo --activity` does)."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from order_export_tui.sources.demo.helpers import _now_text
from order_export_tui.sources.demo.reader import _read_only_uri
from order_export_tui.sources.demo.tracking import _tracking_number, _tracking_url

# --------------------------------------------------------------------------------------------
# Simulated ERP activity
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _write_transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-write connection (never creating the file) in one IMMEDIATE transaction."""
    uri = f"{Path(path).resolve().as_uri()}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def ship_order(
    path: Path,
    order_no: str,
    *,
    carrier: str | None = None,
    tracking_number: str | None = None,
    partial: bool = False,
) -> None:
    """Record a shipment of everything still open on `order_no` (with `partial`, only part
    of it: the first open line when several are open, else half the open quantity).

    `carrier` defaults to the order's shipping method. Without `tracking_number` one in the
    carrier's style is made up (deterministic per shipment), and the tracking URL is always
    the carrier's own page.
    Raises LookupError for an unknown order, ValueError when nothing (or, with `partial`,
    only one unit) is left to ship.
    """
    with _write_transaction(path) as conn:
        target = conn.execute(
            "SELECT ship_to_country, ship_to_postcode, shipping_method FROM sales_header"
            " WHERE order_no = ?",
            (order_no,),
        ).fetchone()
        if target is None:
            raise LookupError(f"unknown order {order_no!r}")
        open_lines: list[tuple[int, int]] = conn.execute(
            "SELECT line_no, quantity - quantity_shipped FROM sales_line"
            " WHERE order_no = ? AND quantity > quantity_shipped ORDER BY line_no",
            (order_no,),
        ).fetchall()
        if not open_lines:
            raise ValueError(f"order {order_no!r} has nothing left to ship")
        if partial:
            open_lines = _part_of(open_lines, order_no)
        carrier = carrier or target[2] or "DHL"
        shipment_no = _next_shipment_no(conn)
        rng = random.Random(f"{order_no}/{shipment_no}")
        number = tracking_number or _tracking_number(carrier, rng)
        url = _tracking_url(carrier, number, target[0], target[1])
        stamp = _now_text()
        conn.execute(
            "INSERT INTO shipment VALUES (?, ?, ?, ?, ?, ?, ?)",
            (shipment_no, order_no, stamp, carrier, number, url, stamp),
        )
        conn.executemany(
            "INSERT INTO shipment_line VALUES (?, ?, ?)",
            [(shipment_no, line_no, quantity) for line_no, quantity in open_lines],
        )
        conn.executemany(
            "UPDATE sales_line SET quantity_shipped = quantity_shipped + ?, modified_at = ?"
            " WHERE order_no = ? AND line_no = ?",
            [(quantity, stamp, order_no, line_no) for line_no, quantity in open_lines],
        )
        conn.execute(
            "UPDATE sales_header SET modified_at = ? WHERE order_no = ?", (stamp, order_no)
        )


def _part_of(open_lines: list[tuple[int, int]], order_no: str) -> list[tuple[int, int]]:
    if len(open_lines) > 1:
        return open_lines[:1]
    line_no, quantity = open_lines[0]
    if quantity < 2:
        raise ValueError(f"order {order_no!r} has a single unit left: it cannot ship in part")
    return [(line_no, quantity // 2)]


def _next_shipment_no(conn: sqlite3.Connection) -> str:
    """One more than the highest shipment number, keeping its width."""
    last = conn.execute("SELECT max(shipment_no) FROM shipment").fetchone()[0]
    if last is None:
        return "SH-100001"
    prefix, _, digits = last.rpartition("-")
    return f"{prefix}-{int(digits) + 1:0{len(digits)}d}"


def set_payment_status(path: Path, order_no: str, status: str) -> None:
    """Set an order's payment status as the ERP would (any text: a bogus one makes the order
    malformed). Raises LookupError for an unknown order."""
    with _write_transaction(path) as conn:
        updated = conn.execute(
            "UPDATE sales_header SET payment_status = ?, modified_at = ? WHERE order_no = ?",
            (status, _now_text(), order_no),
        ).rowcount
        if updated == 0:
            raise LookupError(f"unknown order {order_no!r}")


def order_numbers(path: Path) -> list[str]:
    """Every order number, ascending (reads them all: meant for small databases)."""
    conn = sqlite3.connect(_read_only_uri(Path(path)), uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT order_no FROM sales_header ORDER BY 1")]
    finally:
        conn.close()


def cancel_order(path: Path, order_no: str) -> None:
    """Cancel an order as many ERPs do: delete it, with its lines (and any shipment).
    Raises LookupError for an unknown order."""
    with _write_transaction(path) as conn:
        deleted = conn.execute("DELETE FROM sales_header WHERE order_no = ?", (order_no,))
        if deleted.rowcount == 0:
            raise LookupError(f"unknown order {order_no!r}")
        conn.execute("DELETE FROM sales_line WHERE order_no = ?", (order_no,))
        conn.execute(
            "DELETE FROM shipment_line WHERE shipment_no IN"
            " (SELECT shipment_no FROM shipment WHERE order_no = ?)",
            (order_no,),
        )
        conn.execute("DELETE FROM shipment WHERE order_no = ?", (order_no,))


# Orders of the window that a run sends (the malformed ones it skips are left alone).
_SENDABLE = """SELECT h.order_no FROM sales_header AS h WHERE h.order_date_utc >= ?
AND h.sell_to_email != '' AND length(h.currency) = 3 AND h.currency != 'XYZ'
AND EXISTS (SELECT 1 FROM sales_line AS l WHERE l.order_no = h.order_no)
AND NOT EXISTS (SELECT 1 FROM sales_line AS l WHERE l.order_no = h.order_no AND l.quantity <= 0)"""


@dataclass(frozen=True, slots=True)
class Activity:
    """What one round of `simulate_activity` did: the order numbers of each kind."""

    cancelled: tuple[str, ...]
    refunded: tuple[str, ...]
    partially_refunded: tuple[str, ...]


def simulate_activity(
    path: Path,
    *,
    seed: int = 1,
    cancel: int = 3,
    refund: int = 2,
    partially_refund: int = 2,
    since: datetime | None = None,
) -> Activity:
    """A round of what happens in an ERP between runs (`order-export demo --activity`):
    `cancel` orders that nothing was shipped of are cancelled (deleted), `refund` paid orders
    are refunded and `partially_refund` more partly refunded. Orders are drawn (with `seed`)
    from those dated on or after `since` (by default the last 30 days), so a run's window
    sees them. Fewer when fewer qualify."""
    first = (since or datetime.now(UTC) - timedelta(days=30)).astimezone(UTC)
    first_text = first.isoformat(timespec="seconds")
    conn = sqlite3.connect(_read_only_uri(Path(path)), uri=True)
    try:
        unshipped = [
            row[0]
            for row in conn.execute(
                f"{_SENDABLE} AND h.payment_status IN ('paid', 'pending') AND NOT EXISTS"
                " (SELECT 1 FROM shipment AS s WHERE s.order_no = h.order_no) ORDER BY 1",
                (first_text,),
            )
        ]
        paid = [
            row[0]
            for row in conn.execute(
                f"{_SENDABLE} AND h.payment_status = 'paid' ORDER BY 1", (first_text,)
            )
        ]
    finally:
        conn.close()
    rng = random.Random(f"activity/{seed}")
    cancelled = rng.sample(unshipped, min(cancel, len(unshipped)))
    left = [order_no for order_no in paid if order_no not in set(cancelled)]
    refunds = rng.sample(left, min(refund + partially_refund, len(left)))
    for order_no in cancelled:
        cancel_order(path, order_no)
    for order_no in refunds[:refund]:
        set_payment_status(path, order_no, "refunded")
    for order_no in refunds[refund:]:
        set_payment_status(path, order_no, "partially_refunded")
    return Activity(
        tuple(sorted(cancelled)), tuple(sorted(refunds[:refund])), tuple(sorted(refunds[refund:]))
    )
