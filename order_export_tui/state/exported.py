"""Exported orders: what each destination last confirmed for each order, and its date.

Rows are keyed by the destination's identity (app and account, `settings.destination_identity`)
and the order id: switching to another account starts a fresh copy, switching back finds
the old one. Each method works on one destination: the one given, else the store's
(`use_destination`)."""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from order_export_tui.state.backend import StateConnection
from order_export_tui.state.dates import instant_key, order_date_key
from order_export_tui.state.schema import UNOWNED_DESTINATION

REALTIME_GRACE = timedelta(days=1)  # how long the ERP may take to list an order sent live


@dataclass(frozen=True, slots=True)
class ExportedOrder:
    """What the destination last confirmed for an order. `document` (the order document as
    JSON) is written with it (a run's: that of an order not shipped yet, in `kept_document`),
    and read only where needed (`exported_document` the real-time one, `gone_unread`).
    `order_date`: the document's `order_date` (what the export window counts by)."""

    order_id: str
    content_hash: str
    shipping_status: str
    payment_status: str
    document: bytes | None = None
    order_date: str | None = None
    # The customer's e-mail the destination holds the order under (None: not known, a row
    # from before the state kept it): an order whose e-mail changed is moved from it.
    customer_email: str | None = None


class ExportedOrders:
    """The `exported_order` table."""

    def __init__(self, db: StateConnection) -> None:
        self._db = db
        self.destination = UNOWNED_DESTINATION  # used when a method is given none

    def use_destination(self, destination: str) -> None:
        """Work on this destination's rows when a method is given none, and give it the rows
        that belong to none (from before the state told destinations apart)."""
        self.destination = destination
        self.claim_unowned(destination)

    def claim_unowned(self, destination: str) -> int:
        """The rows a migration left to no destination become `destination`'s: the one
        configured when the migrated file is first opened with settings. Returns how many."""
        if destination == UNOWNED_DESTINATION or not self._has_unowned():
            return 0
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE OR IGNORE exported_order SET destination = ? WHERE destination = ?",
                (destination, UNOWNED_DESTINATION),
            )
        return cursor.rowcount

    def _has_unowned(self) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM exported_order WHERE destination = ? LIMIT 1", (UNOWNED_DESTINATION,)
        )
        return row.fetchone() is not None

    def _of(self, destination: str | None) -> str:
        return self.destination if destination is None else destination

    def exported_orders(
        self, order_ids: Sequence[str], *, destination: str | None = None
    ) -> dict[str, ExportedOrder]:
        """What was last sent for each of these orders (absent ids were never sent)."""
        rows = self._db.rows_for_ids(
            "SELECT order_id, content_hash, shipping_status, payment_status, customer_email"
            " FROM exported_order WHERE destination = ? AND",
            order_ids,
            (self._of(destination),),
        )
        return {row[0]: ExportedOrder(*row[:4], customer_email=row[4]) for row in rows}

    def confirmed_hashes(
        self, order_ids: Sequence[str], *, destination: str | None = None
    ) -> dict[str, str]:
        """The content hash last confirmed for each of these orders (absent ids were never
        sent): all a run needs to know an unchanged order, without a record built for each."""
        return dict(
            self._db.rows_for_ids(
                "SELECT order_id, content_hash FROM exported_order WHERE destination = ? AND",
                order_ids,
                (self._of(destination),),
            )
        )

    def exported_document(self, order_id: str, *, destination: str | None = None) -> bytes | None:
        """The order document (JSON) the destination last confirmed in real time, None when
        never sent so (a run's kept documents are for `gone_unread` alone: a payment callback
        reads a run's order from the ERP, as it has it now)."""
        row = self._db.execute(
            "SELECT document FROM exported_order WHERE destination = ? AND order_id = ?",
            (self._of(destination), order_id),
        ).fetchone()
        return None if row is None else row[0]

    def confirmed_document(self, order_id: str, *, destination: str | None = None) -> bytes | None:
        """The order document (JSON) the destination last confirmed, kept by a run or by
        real-time delivery; None when the state kept none (a shipped order's, say)."""
        row = self._db.execute(
            "SELECT coalesce(e.document, k.document) FROM exported_order AS e"
            " LEFT JOIN kept_document AS k USING (destination, order_id)"
            " WHERE destination = ? AND order_id = ?",
            (self._of(destination), order_id),
        ).fetchone()
        return None if row is None else row[0]

    def exported_count(
        self, since: datetime | None = None, *, destination: str | None = None
    ) -> int:
        """How many orders the destination holds as last confirmed; with `since` (the
        export window's first moment), only those dated from then on. An order whose date is
        not known yet (exported before the state kept dates) is not counted in a window."""
        if since is None:
            row = self._db.execute(
                "SELECT COUNT(*) FROM exported_order WHERE destination = ?",
                (self._of(destination),),
            ).fetchone()
            return int(row[0])
        row = self._db.execute(
            "SELECT COUNT(*) FROM exported_order WHERE destination = ? AND order_date >= ?",
            (self._of(destination), instant_key(since)),
        ).fetchone()
        return int(row[0])

    def forget_unread(
        self,
        *,
        since: datetime,
        started_at: datetime,
        read: Container[str],
        destination: str | None = None,
    ) -> int:
        """After a run that read every order of its window (dated from `since` on): forget
        the exported orders dated in that window that the run did not read, because the ERP
        no longer has them (`gone_unread`). Nothing at the destination changes. Returns how
        many were forgotten."""
        gone = self.gone_unread(
            since=since, started_at=started_at, read=read, destination=destination
        )
        return self.forget([order.order_id for order in gone], destination=destination)

    def gone_unread(
        self,
        *,
        since: datetime,
        started_at: datetime,
        read: Container[str],
        destination: str | None = None,
    ) -> list[ExportedOrder]:
        """After a run that read every order of its window (dated from `since` on): the
        exported orders dated in that window that the run did not read, because the ERP no
        longer has them. Only those exported before the run started (`started_at`), and of
        those sent in real time only, the ones sent over a day before: such an order may not
        have reached the ERP yet. Each with its document where one was kept."""
        destination = self._of(destination)
        # The ids alone come from the date index; only the few unread rows are looked up.
        rows = self._db.execute(
            "SELECT order_id FROM exported_order WHERE destination = ? AND order_date >= ?",
            (destination, instant_key(since)),
        )
        unread = [order_id for (order_id,) in rows if order_id not in read]
        # An order the webstore sent in real time that no run has sent may not be in the
        # ERP yet: it is gone only once it has had a day to get there.
        realtime_before = started_at - REALTIME_GRACE
        rows = self._db.rows_for_ids(
            "SELECT exported_at, run_id, order_id, content_hash, shipping_status,"
            " payment_status, coalesce(e.document, k.document), order_date, customer_email"
            " FROM exported_order AS e"
            " LEFT JOIN kept_document AS k USING (destination, order_id)"
            " WHERE destination = ? AND",
            unread,
            (destination,),
        )
        return [
            ExportedOrder(*order)
            for exported_at, run_id, *order in rows
            if datetime.fromisoformat(exported_at)
            < (started_at if run_id is not None else realtime_before)
        ]

    def forget(self, order_ids: Sequence[str], *, destination: str | None = None) -> int:
        """Forget these exported orders (the ERP no longer has them). Returns how many."""
        destination = self._of(destination)
        keys = [(destination, order_id) for order_id in order_ids]
        with self._db.transaction() as db:
            db.executemany(
                "DELETE FROM exported_order WHERE destination = ? AND order_id = ?", keys
            )
            db.executemany("DELETE FROM kept_document WHERE destination = ? AND order_id = ?", keys)
        return len(order_ids)

    def record(
        self,
        exported: Iterable[ExportedOrder],
        *,
        run_id: int | None,
        stamp: str,
        seen: dict[str, str] | None = None,
        destination: str | None = None,
    ) -> None:
        """Write the orders the destination confirmed (sent at `stamp`, by `run_id`; None
        when sent in real time), and the dates of unchanged orders as read (`seen`: order id
        -> order date) where the state does not know them yet (rows from before it kept
        dates)."""
        destination = self._of(destination)
        confirmed = list(exported)
        # A run's documents go to `kept_document`, a rowid table: the ~1.5 KB of a document
        # overflows a page of `exported_order` (WITHOUT ROWID), which then takes 4 KB a row.
        by_run = run_id is not None
        rows = [
            (
                destination,
                e.order_id,
                e.content_hash,
                e.shipping_status,
                e.payment_status,
                stamp,
                run_id,
                None if by_run else e.document,
                order_date_key(e.order_date),
                e.customer_email,
            )
            for e in confirmed
        ]
        kept = [
            (destination, e.order_id, e.document)
            for e in confirmed
            if by_run and e.document is not None
        ]
        dropped = [(destination, e.order_id) for e in confirmed if by_run and e.document is None]
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO exported_order (destination, order_id, content_hash,"
                " shipping_status, payment_status, exported_at, run_id, document, order_date,"
                " customer_email) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (destination, order_id) DO UPDATE"
                " SET content_hash = excluded.content_hash,"
                " shipping_status = excluded.shipping_status,"
                " payment_status = excluded.payment_status,"
                " exported_at = excluded.exported_at,"
                " run_id = coalesce(excluded.run_id, exported_order.run_id),"
                " document = excluded.document,"
                " order_date = coalesce(excluded.order_date, exported_order.order_date),"
                " customer_email = coalesce(excluded.customer_email,"
                " exported_order.customer_email)",
                rows,
            )
            if kept:
                db.executemany(
                    "INSERT INTO kept_document (destination, order_id, document) VALUES (?, ?, ?)"
                    " ON CONFLICT (destination, order_id) DO UPDATE"
                    " SET document = excluded.document",
                    kept,
                )
            if dropped:
                db.executemany(
                    "DELETE FROM kept_document WHERE destination = ? AND order_id = ?", dropped
                )
            if seen and self._has_undated(destination):
                db.executemany(
                    "UPDATE exported_order SET order_date = ?"
                    " WHERE destination = ? AND order_id = ? AND order_date IS NULL",
                    [
                        (key, destination, order_id)
                        for order_id, order_date in seen.items()
                        if (key := order_date_key(order_date)) is not None
                    ],
                )

    def _has_undated(self, destination: str) -> bool:
        """Whether any exported order lacks its date (from before the state kept dates); the
        date index answers at once, so a run's unchanged orders cost nothing once none do."""
        row = self._db.execute(
            "SELECT 1 FROM exported_order WHERE destination = ? AND order_date IS NULL LIMIT 1",
            (destination,),
        )
        return row.fetchone() is not None
