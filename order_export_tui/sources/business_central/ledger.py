"""What the Business Central source remembers between runs: a small SQLite file of its own.

Business Central deletes a sales order once it is fully shipped and invoiced. Its posted
shipments and invoices stay, but API v2.0 gives neither of them the order's date, so the
order's document cannot be rebuilt from them alone. The ledger keeps, next to the state
database (`<state database>.business-central.sqlite`):

- `orders`: the last document made of each in-window sales order, by number. When an order
  is missing from `salesOrders` and has posted shipments, this document (order date, lines,
  amounts and all) is yielded again with the shipping status its shipments give: what the
  destination already holds for it stays as it was, bar that status. Documents of orders
  that left the window are dropped; a bare row (no document) stays for a year, so a late
  shipment of an out-of-window order is never mistaken for a new order.
- `shipments`: each in-window posted shipment's order number, posting date and shipped
  quantity per order line (`sequence`), read incrementally by modification time.
- `seen`: the order numbers the current run read from `salesOrders`.
- `meta`: the company the ledger belongs to (another one resets it), and how far the
  shipments were read (`shipments_from`: every shipment posted since that day is known,
  up to `shipments_watermark`, the newest `lastModifiedDateTime` read).

It caches Business Central's side only; it says nothing about what was sent. Losing it costs a
full read of the window's shipments, and orders that left `salesOrders` meanwhile are rebuilt
from their posted invoices instead (with their first shipment's posting date as order date).
One process writes it at a time: the engine runs under the state database's lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path

import orjson

from order_export_tui.orders import OrderDocument
from order_export_tui.private_files import create_private_file, make_private_dirs

TOMBSTONE_DAYS = 366
_SQLITE_MAX_PARAMS = 900

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (
    number TEXT PRIMARY KEY,
    order_date TEXT NOT NULL,      -- YYYY-MM-DD
    document BLOB,                 -- JSON; NULL: out of the window, or never rebuildable
    gone INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS orders_by_date ON orders (order_date);
CREATE TABLE IF NOT EXISTS shipments (
    number TEXT PRIMARY KEY,
    order_number TEXT NOT NULL,
    posting_date TEXT NOT NULL,    -- YYYY-MM-DD
    lines BLOB NOT NULL            -- JSON [[sequence, quantity], ...]
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shipments_by_order ON shipments (order_number, posting_date);
CREATE TABLE IF NOT EXISTS seen (number TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tracking (
    number TEXT PRIMARY KEY,       -- the posted shipment's
    order_number TEXT NOT NULL,
    posting_date TEXT NOT NULL,    -- YYYY-MM-DD
    tracking_number TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tracking_by_order ON tracking (order_number, posting_date);
"""

_REMEMBER_ORDER = """
INSERT INTO orders (number, order_date, document, gone) VALUES (?, ?, ?, ?)
ON CONFLICT (number) DO UPDATE SET
    order_date = excluded.order_date, document = excluded.document, gone = excluded.gone
WHERE orders.document IS NOT excluded.document
    OR orders.gone != excluded.gone OR orders.order_date != excluded.order_date
"""

_LEFT_ORDERS = """
SELECT o.number, o.document FROM orders AS o
WHERE o.number > ? AND o.order_date >= ? AND o.document IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM seen AS s WHERE s.number = o.number)
    AND EXISTS (SELECT 1 FROM shipments AS sh WHERE sh.order_number = o.number)
ORDER BY o.number LIMIT ?
"""

_UNREAD_SHIPPED_ORDERS = """
SELECT sh.order_number, min(sh.posting_date) FROM shipments AS sh
WHERE sh.order_number > ?
    AND NOT EXISTS (SELECT 1 FROM orders AS o WHERE o.number = sh.order_number)
GROUP BY sh.order_number HAVING min(sh.posting_date) >= ?
ORDER BY sh.order_number LIMIT ?
"""

# The run's count (`count_orders`): the in-window orders the ledger holds a document of that
# have posted shipments, in number order, whether already known to have left (gone).
_SHIPPED_IN_WINDOW = """
SELECT o.number, o.document, o.gone FROM orders AS o
WHERE o.number > ? AND o.order_date >= ? AND o.document IS NOT NULL
    AND EXISTS (SELECT 1 FROM shipments AS sh WHERE sh.order_number = o.number)
ORDER BY o.number LIMIT ?
"""

OrderRow = tuple[str, str, OrderDocument]  # number, order date (YYYY-MM-DD), document
ShipmentRow = tuple[str, str, str, dict[int, float]]  # number, order number, posting date, lines
TrackingRow = tuple[str, str, str, str]  # shipment number, order number, posting date, tracking


class Ledger:
    """The ledger of one company, used from worker threads one call at a time (a lock makes
    `close` wait for a call still running after its awaiting task was cancelled)."""

    def __init__(self, path: Path, identity: str) -> None:
        self.path = Path(path)
        # Order documents (names, addresses) live here: owner-only, as the state database.
        make_private_dirs(self.path.parent)
        create_private_file(self.path)  # SQLite gives -wal and -shm this file's mode
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        if self._meta("identity") != identity:
            self._reset(identity)

    @staticmethod
    def documents_of(path: Path, identity: str, numbers: Sequence[str]) -> dict[str, bytes]:
        """Order number -> the last document remembered for it (JSON), for these orders; read
        without creating anything, so a lookup never disturbs a run's own connection."""
        if not numbers or not Path(path).is_file():
            return {}
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
            if row is None or row[0] != identity:
                return {}
            found: dict[str, bytes] = {}
            for start in range(0, len(numbers), _SQLITE_MAX_PARAMS):
                part = list(numbers[start : start + _SQLITE_MAX_PARAMS])
                marks = ", ".join("?" * len(part))
                query = f"SELECT number, document FROM orders WHERE number IN ({marks})"
                for number, document in conn.execute(f"{query} AND document IS NOT NULL", part):
                    found[number] = document
            return found
        except sqlite3.Error:
            return {}
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- a run -----------------------------------------------------------------------------

    def start_run(self, first_day: str) -> None:
        """Forget what lies before the window and what the last run saw."""
        horizon = (date.fromisoformat(first_day) - timedelta(days=TOMBSTONE_DAYS)).isoformat()
        with self._transaction() as conn:
            conn.execute("DELETE FROM seen")
            conn.execute("DELETE FROM orders WHERE order_date < ?", (horizon,))
            conn.execute(
                "UPDATE orders SET document = NULL, gone = 0"
                " WHERE order_date < ? AND document IS NOT NULL",
                (first_day,),
            )
            conn.execute("DELETE FROM shipments WHERE posting_date < ?", (first_day,))
            conn.execute("DELETE FROM tracking WHERE posting_date < ?", (first_day,))

    def remember_orders(self, rows: Sequence[OrderRow], *, gone: bool = False) -> None:
        """Documents just made; read from `salesOrders` (marked seen) unless `gone`."""
        flag = 1 if gone else 0
        with self._transaction() as conn:
            conn.executemany(
                _REMEMBER_ORDER,
                [(number, day, orjson.dumps(doc), flag) for number, day, doc in rows],
            )
            if not gone:
                conn.executemany(
                    "INSERT OR IGNORE INTO seen VALUES (?)", [(number,) for number, _, _ in rows]
                )

    def remember_unrebuildable(self, rows: Iterable[tuple[str, str]]) -> None:
        """Orders that left `salesOrders` unread and have no invoice: never asked for again."""
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO orders (number, order_date) VALUES (?, ?)", list(rows)
            )

    def left_orders(self, first_day: str, after: str, limit: int) -> list[tuple[str, bytes]]:
        """(number, document) of in-window orders with posted shipments that this run did not
        read from `salesOrders`, numbers above `after`, in number order."""
        with self._lock:
            return self._conn.execute(_LEFT_ORDERS, (after, first_day, limit)).fetchall()

    def shipped_in_window(
        self, first_day: str, after: str, limit: int
    ) -> list[tuple[str, bytes, int]]:
        """(number, document, gone) of in-window orders with posted shipments, numbers above
        `after`: those `left_orders` may yield once the run has read the open ones."""
        with self._lock:
            return self._conn.execute(_SHIPPED_IN_WINDOW, (after, first_day, limit)).fetchall()

    def unread_shipped_orders(
        self, first_day: str, after: str, limit: int
    ) -> list[tuple[str, str]]:
        """(order number, first posting date) of shipped orders never read from `salesOrders`
        whose first shipment lies in the window, numbers above `after`."""
        with self._lock:
            rows = self._conn.execute(_UNREAD_SHIPPED_ORDERS, (after, first_day, limit))
            return rows.fetchall()

    # --- shipments -------------------------------------------------------------------------

    def shipments_position(self) -> tuple[str | None, str | None]:
        """(`shipments_from`, `shipments_watermark`)."""
        with self._lock:
            return self._meta("shipments_from"), self._meta("shipments_watermark")

    def remember_shipments(self, rows: Sequence[ShipmentRow], newest: str | None) -> None:
        """Posted shipments just read; `newest`: their latest `lastModifiedDateTime` (UTC ISO
        text with microseconds, so texts compare as times)."""
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO shipments VALUES (?, ?, ?, ?)",
                [
                    (number, order, posted, orjson.dumps(sorted(lines.items())))
                    for number, order, posted, lines in rows
                ],
            )
            watermark = self._meta("shipments_watermark")
            if newest is not None and (watermark is None or newest > watermark):
                self._set_meta(conn, "shipments_watermark", newest)

    def shipments_read_from(self, first_day: str) -> None:
        with self._transaction() as conn:
            self._set_meta(conn, "shipments_from", first_day)

    # --- tracking numbers (an API extension's field of posted shipments) ---------------------

    def tracking_position(self, source: str) -> tuple[str | None, str | None]:
        """(`tracking_from`, `tracking_watermark`) of the tracking read from `source` (the
        API route and field); a new source starts over."""
        with self._lock:
            if self._meta("tracking_source") != source:
                return None, None
            return self._meta("tracking_from"), self._meta("tracking_watermark")

    def remember_tracking(self, rows: Sequence[TrackingRow], newest: str | None) -> None:
        with self._transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO tracking VALUES (?, ?, ?, ?)", list(rows))
            watermark = self._meta("tracking_watermark")
            if newest is not None and (watermark is None or newest > watermark):
                self._set_meta(conn, "tracking_watermark", newest)

    def tracking_read_from(self, first_day: str, source: str) -> None:
        with self._transaction() as conn:
            if self._meta("tracking_source") != source:
                conn.execute("DELETE FROM meta WHERE key = 'tracking_watermark'")
                self._set_meta(conn, "tracking_source", source)
            self._set_meta(conn, "tracking_from", first_day)

    def forget_tracking_watermark(self, source: str) -> None:
        """Before a full read from a new source: what an older source left is not kept."""
        with self._transaction() as conn:
            if self._meta("tracking_source") != source:
                conn.execute("DELETE FROM tracking")
                conn.execute("DELETE FROM meta WHERE key = 'tracking_watermark'")

    def tracking_numbers(self, order_numbers: Sequence[str]) -> dict[str, str]:
        """Order number -> the tracking number of its latest posted shipment that has one."""
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(order_numbers), _SQLITE_MAX_PARAMS):
                part = order_numbers[start : start + _SQLITE_MAX_PARAMS]
                marks = ", ".join("?" * len(part))
                query = (
                    "SELECT order_number, tracking_number FROM tracking"
                    f" WHERE order_number IN ({marks}) AND tracking_number != ''"
                    " ORDER BY order_number, posting_date, number"
                )
                found.update(self._conn.execute(query, part).fetchall())
        return found

    def shipped_quantities(self, order_numbers: Sequence[str]) -> dict[str, dict[int, float]]:
        """Order number -> line sequence -> quantity shipped, over all its posted shipments."""
        shipped: dict[str, dict[int, float]] = {}
        with self._lock:
            rows = self._shipment_lines(order_numbers)
        for order, lines in rows:
            totals = shipped.setdefault(order, {})
            for sequence, quantity in orjson.loads(lines):
                totals[sequence] = totals.get(sequence, 0.0) + quantity
        return shipped

    def _shipment_lines(self, order_numbers: Sequence[str]) -> list[tuple[str, bytes]]:
        rows: list[tuple[str, bytes]] = []
        for start in range(0, len(order_numbers), _SQLITE_MAX_PARAMS):
            part = order_numbers[start : start + _SQLITE_MAX_PARAMS]
            marks = ", ".join("?" * len(part))
            query = f"SELECT order_number, lines FROM shipments WHERE order_number IN ({marks})"
            rows.extend(self._conn.execute(query, part))
        return rows

    # --- plumbing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _reset(self, identity: str) -> None:
        with self._transaction() as conn:
            for table in ("meta", "orders", "shipments", "seen", "tracking"):
                conn.execute(f"DELETE FROM {table}")
            self._set_meta(conn, "identity", identity)
