"""Reading the dry-run file back (interfaces.md §8): what Dotdigital would hold had it
received every request in the file.

Each line is one request: a bulk import (`PUT /insightData/v3/import`, several records) or a
single-record upsert (`PUT .../contacts/email/{email}/{collection}/{orderId}`), and, should
the file ever hold one, a record's deletion (`DELETE` on that path). The latest record of each
order counts. The file is streamed a line at a time into a sorted spill keyed by order id
(`readback_spill`: a later record replaces an earlier one there), so memory stays flat however
long the file is; only the spill on disk grows with the number of distinct orders. The reading
runs in a worker thread: a long file does not hold up the daemon's event loop.

A file that does not exist holds no orders. A line that is not such a request fails the
read-back (`DestinationError` naming the line), except an unfinished last line, which a crash
of the writer can leave and its next open cuts off.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson

from order_export_tui.destinations.base import DestinationError
from order_export_tui.destinations.dotdigital.readback import platform_order
from order_export_tui.destinations.dotdigital.records import IMPORT_PATH
from order_export_tui.destinations.readback import PlatformOrder, in_window
from order_export_tui.destinations.readback_spill import SortedSpill, platform_spill

_RECORD_PATH_PREFIX = "/insightData/v3/contacts/"


async def read_file_copy(
    path: Path, collection: str, since: datetime
) -> SortedSpill[PlatformOrder]:
    """The file's copy of the window, sorted by order id (the latest record of each order).
    The caller closes it (`with`); a failure to read closes it here and raises."""
    spill = platform_spill(one_per_order=True)
    try:
        await asyncio.to_thread(_fill, spill, path, collection, since)
    except BaseException:
        spill.close()
        raise
    return spill


def _fill(spill: SortedSpill[PlatformOrder], path: Path, collection: str, since: datetime) -> None:
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below; a missing file is no error
    except FileNotFoundError:
        return
    except OSError as error:
        raise DestinationError(f"cannot read the dry-run file {path}: {error}") from error
    with file:
        for number, line in enumerate(file, start=1):
            if not line.endswith(b"\n"):
                return  # an unfinished last line: a crash while writing it
            try:
                request = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise DestinationError(
                    f"the dry-run file {path}, line {number}, is not JSON: {error}"
                ) from error
            if not _apply(spill, request, collection, since):
                raise DestinationError(
                    f"the dry-run file {path}, line {number}, is not a request this product writes"
                )


def _apply(
    spill: SortedSpill[PlatformOrder], request: Any, collection: str, since: datetime
) -> bool:
    """Apply one line's request to the copy; False when it is no request this file holds."""
    if not isinstance(request, dict):
        return False
    method, target, body = request.get("method"), request.get("path"), request.get("body")
    if not isinstance(target, str):
        return False
    if method == "PUT" and target == IMPORT_PATH and isinstance(body, dict):
        if str(body.get("collectionName", "")).lower() != collection.lower():
            return True  # another collection's records: not this copy
        records = body.get("records")
        if not isinstance(records, list):
            return False
        for record in records:
            if isinstance(record, dict):
                _keep(spill, platform_order(record), since)
        return True
    address = _record_address(target)
    if address is None:
        return False
    email, named_collection, order_id = address
    if named_collection.lower() != collection.lower():
        return True
    if method == "PUT" and isinstance(body, dict):
        _keep(spill, platform_order({"key": order_id, "json": body}), since)
        return True
    if method == "DELETE":
        held = spill.get(order_id, "")
        if held is not None and held.email.lower() == email.lower():
            spill.discard(order_id, "")
        return True
    return False


def _keep(spill: SortedSpill[PlatformOrder], order: PlatformOrder, since: datetime) -> None:
    if in_window(order.order_date, since):
        spill.add(order)


def _record_address(target: str) -> tuple[str, str, str] | None:
    """(e-mail, collection, order id) of `.../contacts/email/{email}/{collection}/{orderId}`."""
    if not target.startswith(_RECORD_PATH_PREFIX):
        return None
    parts = target.removeprefix(_RECORD_PATH_PREFIX).split("/")
    if len(parts) != 4 or parts[0] != "email":
        return None
    return unquote(parts[1]), unquote(parts[2]), unquote(parts[3])
