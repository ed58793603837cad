"""File destinations with a script: one that fails every batch, one that refuses or fails
named orders sent in real time. The rest goes to the real file destination."""

from __future__ import annotations

from typing import Any

from order_export_tui.destinations.base import DestinationError, OrderChange
from order_export_tui.service.wiring import build_destination
from order_export_tui.settings import Settings
from order_export_tui.transport.retry import Retrier


class RefusingDestination:
    """The file destination that fails every batch: a run that fails having sent nothing."""

    def __init__(self, settings: Settings) -> None:
        self._inner = build_destination(settings)
        self.name = self._inner.name
        self.max_batches_in_flight = 1

    async def open(self, **options: Any) -> None:
        await self._inner.open()

    async def send_batch(self, changes: Any, retrier: Any) -> dict[str, str]:
        raise DestinationError("the destination said no")

    async def close(self) -> None:
        await self._inner.close()


class ScriptedDestination:
    """The file destination, except that orders in `refuse` are refused with `reason` and
    orders in `fail` make the destination fail, whenever they are sent in real time."""

    reason = "the contact is suppressed"

    def __init__(self, settings: Settings, *, refuse: set[str], fail: set[str]) -> None:
        self._inner = build_destination(settings)
        self.name = self._inner.name
        self.max_batches_in_flight = 1
        self.refuse = refuse
        self.fail = fail

    async def open(self, **options: Any) -> None:
        await self._inner.open(**options)

    async def send_batch(self, changes: Any, retrier: Retrier) -> dict[str, str]:
        return await self._inner.send_batch(changes, retrier)

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        order_id = change.document["order_id"]
        if order_id in self.fail:
            raise DestinationError("503 Service Unavailable")
        if order_id in self.refuse:
            return self.reason
        return await self._inner.send_one(change, retrier)

    async def close(self) -> None:
        await self._inner.close()
