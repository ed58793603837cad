"""The webstore side of the real-time channel: the webhook secret, and signed events posted
to the intake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from order_export_tui.service.intake import signature_for

SECRET = "webhook-secret-for-tests"


def payment(order_id: str, status: str, at: str = "2026-11-27T10:25:00+00:00") -> dict[str, Any]:
    return {"order_id": order_id, "payment_status": status, "occurred_at": at}


@dataclass
class Webstore:
    """What the webstore does: sign and post events."""

    client: httpx.AsyncClient

    async def post(
        self, path: str, event: Any, *, secret: str = SECRET, raw: bytes | None = None
    ) -> httpx.Response:
        body = raw if raw is not None else orjson.dumps(event)
        headers = {"X-Signature": signature_for(secret, body), "Content-Type": "application/json"}
        return await self.client.post(path, content=body, headers=headers)

    async def order_completed(self, doc: dict[str, Any]) -> httpx.Response:
        return await self.post("/webhooks/order-completed", doc)

    async def payment_status(self, event: dict[str, Any]) -> httpx.Response:
        return await self.post("/webhooks/payment-status", event)


async def post_to_intake(port: int, path: str, event: Any) -> httpx.Response:
    """One signed event posted to the intake listening on 127.0.0.1:`port`."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        return await Webstore(client).post(path, event)
