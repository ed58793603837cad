"""The outbox itself: imported only when order-export builds the destination."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from order_export_outbox.connector import CONNECTOR
from order_export_tui.destinations.base import OrderChange
from order_export_tui.settings import Settings, resolve_path
from order_export_tui.transport.retry import Retrier


class OutboxDestination:
    name = "outbox"
    max_batches_in_flight = 1

    def __init__(self, folder: Path, indent: int) -> None:
        self.folder = folder
        self.indent = indent or None

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxDestination:
        section = CONNECTOR.section_of(settings)
        return cls(resolve_path(settings, section.folder), section.indent)

    async def open(self, *, backfill: bool = False) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def send_batch(self, changes: Sequence[OrderChange], retrier: Retrier) -> dict[str, str]:
        for change in changes:
            await retrier.call("write to the outbox", lambda change=change: self._write(change))
        return {}

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        await retrier.call("write to the outbox", lambda: self._write(change))
        return None

    async def check_connection(self) -> str:
        return f"outbox folder {self.folder}"

    async def close(self) -> None:
        return None

    async def _write(self, change: OrderChange) -> None:
        # Written aside, then renamed: a reader never sees half a file.
        target = self.folder / f"{change.order_id}.json"
        temporary = target.with_suffix(".tmp")
        text = json.dumps(change.document, indent=self.indent, default=str)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
