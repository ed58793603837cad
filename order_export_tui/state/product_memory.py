"""What a destination last sent of each product, kept in the state database between runs."""

from __future__ import annotations

from collections.abc import Iterable

from order_export_tui.state.backend import StateConnection
from order_export_tui.state.location import StateLocation
from order_export_tui.state.opening import open_database


class ProductMemory:
    """What a destination last sent of each product (`scope`: the destination and store), so
    a product is created or updated only when it is new or changed. Its own connection to the
    state database (opened, checked and migrated as the store's is); use it from one thread.
    A failed save is a `StateWriteError` and saves none of it."""

    def __init__(self, location: StateLocation, scope: str) -> None:
        self.scope = scope
        self._db: StateConnection = open_database(location)

    def load(self) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT sku, content_hash FROM sent_product WHERE scope = ?", (self.scope,)
        )
        return dict(rows.fetchall())

    def save(self, sent: dict[str, str], forgotten: Iterable[str] = ()) -> None:
        with self._db.transaction() as db:
            db.executemany(
                "DELETE FROM sent_product WHERE scope = ? AND sku = ?",
                [(self.scope, sku) for sku in forgotten],
            )
            db.executemany(
                "INSERT INTO sent_product (scope, sku, content_hash) VALUES (?, ?, ?)"
                " ON CONFLICT (scope, sku) DO UPDATE SET content_hash = excluded.content_hash",
                [(self.scope, sku, digest) for sku, digest in sent.items()],
            )

    def close(self) -> None:
        self._db.close()
