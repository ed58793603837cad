"""A destination speaking a minimal bulk protocol to a loopback `FaultServer`.

It goes through the same HTTP helpers and retry policy as the platform destinations, so the
engine's retries, skips and failure handling are exercised over a real socket.
Protocol: `POST /orders {"orders": [...]}` answers `200 {"rejected": {order_id: reason}}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from order_export_tui.destinations.base import OrderChange
from order_export_tui.transport.http import send
from order_export_tui.transport.retry import Retrier
from tests.support.fault_server import FaultServer, Received


class LoopbackDestination:
    name = "loopback"

    def __init__(self, base_url: str, *, in_flight: int = 1) -> None:
        self.base_url = base_url
        self.max_batches_in_flight = in_flight
        self._client: httpx.AsyncClient | None = None

    async def open(self, *, backfill: bool = False) -> None:
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=5)

    async def send_batch(self, changes: Sequence[OrderChange], retrier: Retrier) -> dict[str, str]:
        assert self._client is not None
        client = self._client
        body = {"orders": [change.document for change in changes]}
        request = client.build_request("POST", "/orders", json=body)
        response = await retrier.call("POST /orders", lambda: send(client, request, "POST /orders"))
        response.raise_for_status()
        return dict(response.json().get("rejected", {}))

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        return (await self.send_batch([change], retrier)).get(change.order_id)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class OrderStore:
    """The loopback platform's data: an upsert per order id, and which ids it rejects."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.writes: dict[str, int] = {}
        self.received: list[tuple[str, str]] = []  # (order_id, payment_status) in arrival order
        self.reject: dict[str, str] = {}

    def handle(self, request: Received) -> tuple[int, Any, dict[str, str]]:
        if request.method != "POST" or request.path != "/orders":
            return 404, {"error": "not found"}, {}
        rejected = {}
        for order in request.body["orders"]:
            order_id = order["order_id"]
            if order_id in self.reject:
                rejected[order_id] = self.reject[order_id]
                continue
            self.orders[order_id] = order
            self.writes[order_id] = self.writes.get(order_id, 0) + 1
            self.received.append((order_id, order["payment_status"]))
        return 200, {"rejected": rejected}, {}


def loopback_server() -> tuple[FaultServer, OrderStore]:
    store = OrderStore()
    return FaultServer(store.handle), store
