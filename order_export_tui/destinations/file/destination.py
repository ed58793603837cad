"""The dry-run destination: writes exactly the requests a platform would receive.

One JSON line per request: `{"method", "path", "body"}`. Today it renders Dotdigital's bulk
insight import (one request per batch), the seed's platform. An operator reads the file
before going live; every write is one `write(2)` on an O_APPEND descriptor, so a crash leaves
whole lines only (a torn tail from an older crash is cut off on open).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import orjson

from order_export_tui.destinations.base import OrderChange
from order_export_tui.destinations.dotdigital.records import (
    IMPORT_PATH,
    bulk_import_body,
    order_record_json,
    single_record_path,
)
from order_export_tui.destinations.readback import PlatformOrder
from order_export_tui.destinations.readback_spill import SortedSpill
from order_export_tui.private_files import make_private_dirs, open_private
from order_export_tui.transport.retry import Retrier


class FileDestination:
    name = "file"
    max_batches_in_flight = 1  # lines stay in the order the orders were read

    def __init__(self, path: Path, *, store_name: str, collection: str = "Orders") -> None:
        self.path = path
        self.store_name = store_name
        self.collection = collection
        self._fd: int | None = None

    async def open(self, *, backfill: bool = False) -> None:
        make_private_dirs(self.path.parent)
        self._cut_torn_tail()
        # Owner-only: the requests hold customers' names, e-mail and postal addresses.
        self._fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)

    async def send_batch(self, changes: Sequence[OrderChange], retrier: Retrier) -> dict[str, str]:
        body = bulk_import_body(
            [change.document for change in changes],
            collection=self.collection,
            store_name=self.store_name,
        )
        request = {"method": "PUT", "path": IMPORT_PATH, "body": body}
        line = orjson.dumps(request) + b"\n"
        await retrier.call("write to the dry-run file", lambda: self._write(line))
        return {}

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        """One order, as the single-record upsert Dotdigital would receive."""
        doc = change.document
        request = {
            "method": "PUT",
            "path": single_record_path(doc, self.collection),
            "body": order_record_json(doc, self.store_name),
        }
        line = orjson.dumps(request) + b"\n"
        await retrier.call("write to the dry-run file", lambda: self._write(line))
        return None

    async def check_connection(self) -> str:
        """The dry-run file's folder must be writable."""
        await self.open()
        return f"file {self.path} (dry run: the requests Dotdigital would receive)"

    async def read_back(self, since: datetime, retrier: Retrier) -> SortedSpill[PlatformOrder]:
        """The file's orders dated from `since` (the latest record of each), sorted by order
        id, in a spill the caller closes (interfaces.md §8; `file.readback`)."""
        # Imported here: the read-back brings Dotdigital's client (httpx) that a run never uses.
        from order_export_tui.destinations.file.readback import read_file_copy

        return await read_file_copy(self.path, self.collection, since)

    async def _write(self, data: bytes) -> None:
        assert self._fd is not None, "open() the destination first"
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk; never leave a partial line behind
            raise OSError(f"short write to {self.path} ({written} of {len(data)} bytes)")

    async def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def _cut_torn_tail(self) -> None:
        try:
            with open(self.path, "rb+") as file:
                size = file.seek(0, os.SEEK_END)
                if size == 0:
                    return
                file.seek(size - 1)
                if file.read(1) == b"\n":
                    return
                # Walk back to the last complete line and cut what follows it.
                position = size
                while position > 0:
                    step = min(65536, position)
                    file.seek(position - step)
                    chunk = file.read(step)
                    newline = chunk.rfind(b"\n")
                    if newline >= 0:
                        file.truncate(position - step + newline + 1)
                        return
                    position -= step
                file.truncate(0)
        except FileNotFoundError:
            return
