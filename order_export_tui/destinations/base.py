"""The protocol every destination implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from order_export_tui.engine.retry import Retrier
from order_export_tui.orders import OrderDocument
from order_export_tui.state import ExportedOrder


@dataclass(frozen=True, slots=True)
class OrderChange:
    """An order to send, and what the destination last confirmed for it (None: never sent)."""

    document: OrderDocument
    kind: Literal["new", "updated"]
    previous: ExportedOrder | None

    @property
    def order_id(self) -> str:
        return self.document["order_id"]


class DestinationError(Exception):
    """The destination cannot take orders at all (bad credentials, missing store...).

    Fails the run; a problem with one order is a rejection instead.
    """


class Destination(Protocol):
    """Sends orders. Every write is an upsert keyed by the order id, so a repeat is harmless.

    `send_batch` returns the orders the destination refused, each with the platform's reason;
    every other order in the batch is confirmed. Requests go through `retrier.call(...)` so the
    engine's retry policy applies to each; `RetriesExhaustedError` or `DestinationError` fail
    the run and nothing of the batch is recorded.
    """

    name: str

    async def open(self) -> None: ...

    async def send_batch(
        self, changes: Sequence[OrderChange], retrier: Retrier
    ) -> dict[str, str]: ...

    async def close(self) -> None: ...
