"""Sorting a stream by order id with flat memory: spilled to a temporary SQLite file.

Mailchimp and Dotdigital list orders in their own order; a one-pass comparison needs both
sides sorted by order id. Holding either copy in memory would grow with the store, so the
items go into a private temporary SQLite file (a folder of its own, 0700, the file 0600: it
holds customers' e-mail addresses) and come back `ORDER BY order_id` through the primary
key's B-tree, a page at a time. SQLite's page cache is capped, so memory stays the same for
10,000 or 1,000,000 orders; the folder is deleted on `close()` (or leaving the `with`).

Each item has a key `(order_id, variant)`: an item with the key of an earlier one replaces
it. That is how a read-back keeps one record per order (the file destination: the latest
line wins; Mailchimp: an order seen twice while paging) or one per order and contact
(Dotdigital keeps a record per contact, so an order moved to another customer may be there
twice until the old record is deleted).
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

import orjson

from order_export_tui.destinations.readback import PlatformOrder
from order_export_tui.orders import OrderDocument
from order_export_tui.private_files import create_private_file

T = TypeVar("T")

CACHE_KIB = 2048  # SQLite's page cache: what the sort may hold in memory
FETCH_ROWS = 500  # rows read back at a time
CHUNK_ROWS = 1000  # rows written at a time


class SortedSpill(Generic[T]):
    """Items in, then out sorted by order id (ties by variant), one pass."""

    def __init__(
        self,
        *,
        key: Callable[[T], tuple[str, str]],
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
    ) -> None:
        self._key = key
        self._encode = encode
        self._decode = decode
        self._folder = Path(tempfile.mkdtemp(prefix="order-export-verify-"))  # 0700
        path = self._folder / "spill.sqlite"
        create_private_file(path)
        # One thread at a time, but not always the one that made it (a file read runs in a
        # worker thread).
        self._db: sqlite3.Connection | None = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False
        )
        for pragma in (
            "journal_mode = OFF",  # a scratch file: nothing to recover after a crash
            "synchronous = OFF",
            f"cache_size = -{CACHE_KIB}",
            "temp_store = FILE",
        ):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE items (order_id TEXT NOT NULL, variant TEXT NOT NULL,"
            " data BLOB NOT NULL, PRIMARY KEY (order_id, variant)) WITHOUT ROWID"
        )
        self._db.execute("BEGIN")
        self.added = 0  # items added, replaced ones included

    @property
    def folder(self) -> Path:
        return self._folder

    def add(self, item: T) -> None:
        self.add_many((item,))

    def get(self, order_id: str, variant: str) -> T | None:
        row = (
            self._connection()
            .execute(
                "SELECT data FROM items WHERE order_id = ? AND variant = ?", (order_id, variant)
            )
            .fetchone()
        )
        return None if row is None else self._decode(row[0])

    def discard(self, order_id: str, variant: str) -> None:
        self._connection().execute(
            "DELETE FROM items WHERE order_id = ? AND variant = ?", (order_id, variant)
        )

    def add_many(self, items: Iterable[T]) -> None:
        """Add items in order (a later one replaces an earlier one with its key), a chunk
        per statement."""
        db = self._connection()
        rows = ((*self._key(item), self._encode(item)) for item in items)
        while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
            db.executemany("INSERT OR REPLACE INTO items VALUES (?, ?, ?)", chunk)
            self.added += len(chunk)

    async def add_stream(self, items: AsyncIterable[T]) -> None:
        chunk: list[T] = []
        async for item in items:
            chunk.append(item)
            if len(chunk) == CHUNK_ROWS:
                self.add_many(chunk)
                chunk.clear()
        self.add_many(chunk)

    def sorted(self) -> Iterator[T]:
        """The items by order id; read lazily, a few hundred rows at a time."""
        db = self._connection()
        if db.in_transaction:
            db.execute("COMMIT")
        cursor = db.execute("SELECT data FROM items ORDER BY order_id, variant")
        try:
            while rows := cursor.fetchmany(FETCH_ROWS):
                for (data,) in rows:
                    yield self._decode(data)
        finally:
            cursor.close()

    def __len__(self) -> int:
        (total,) = self._connection().execute("SELECT count(*) FROM items").fetchone()
        return int(total)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> SortedSpill[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the spill is closed")
        return self._db


def platform_spill(*, one_per_order: bool) -> SortedSpill[PlatformOrder]:
    """For a read-back: one record per order (`one_per_order`, the last one added wins), or
    one per order and e-mail address (Dotdigital: a record per contact)."""
    return SortedSpill(
        key=_by_order if one_per_order else _by_order_and_email,
        encode=_encode_platform_order,
        decode=_decode_platform_order,
    )


def _by_order(order: PlatformOrder) -> tuple[str, str]:
    return order.order_id, ""


def _by_order_and_email(order: PlatformOrder) -> tuple[str, str]:
    return order.order_id, order.email.lower()


def _encode_platform_order(order: PlatformOrder) -> bytes:
    return orjson.dumps(order)  # a NaN total (not a number at the platform) becomes null


def _decode_platform_order(data: bytes) -> PlatformOrder:
    fields = orjson.loads(data)
    total = fields["total"]
    fields["total"] = float("nan") if total is None else float(total)
    return PlatformOrder(**fields)


def erp_spill() -> SortedSpill[PlatformOrder]:
    """For the ERP's side of a comparison: add `platform_view(doc)` of each valid document
    of the window. A fifth of a whole document's bytes, so the faster choice for `verify`."""
    return platform_spill(one_per_order=True)


def document_spill() -> SortedSpill[OrderDocument]:
    """For the ERP's side when whole documents are wanted back: one per order id."""
    return SortedSpill(
        key=lambda doc: (doc["order_id"], ""),
        encode=orjson.dumps,
        decode=orjson.loads,
    )
