"""A running real-time channel (intake on loopback + delivery to a loopback destination)
with any webhook settings and limits, for the webhook's attack tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.export_service import ExportService, RealtimeChannel
from order_export_tui.service.intake import IntakeLimits, signature_for
from order_export_tui.service.wiring import build_source
from order_export_tui.settings import Settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateStore
from tests.support.fault_server import FaultServer
from tests.support.loopback_destination import LoopbackDestination, OrderStore
from tests.support.ports import free_port
from tests.support.webstore import SECRET
from tests.support.webstore import payment as payment  # for the intake tests

WHSEC = "whsec_" + base64.b64encode(b"standard-webhooks-secret-for-tests").decode()


def x_signature_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Signature": signature_for(secret, body), "Content-Type": "application/json"}


@dataclass
class Channel:
    settings: Settings
    service: ExportService
    state: StateStore
    store: OrderStore
    server: FaultServer
    client: httpx.AsyncClient
    port: int

    async def post(
        self, path: str, event: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = event if isinstance(event, bytes) else orjson.dumps(event)
        return await self.client.post(
            path, content=body, headers=x_signature_headers(body) if headers is None else headers
        )

    async def until(self, condition: Callable[[], bool], timeout: float = 15) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_channel(
    make_settings: Callable[..., Settings],
    loopback: tuple[FaultServer, OrderStore],
    *,
    webhook: dict[str, Any] | None = None,
    secret: str = SECRET,
    limits: IntakeLimits | None = None,
    demo_orders: int = 0,
) -> AsyncIterator[Channel]:
    """The service with its webhook intake on loopback and a loopback platform; with
    `demo_orders`, a demo ERP of that many orders to look orders up in."""
    server, store = loopback
    port = free_port()
    settings = make_settings(
        webhook={"enabled": True, "listen": f"127.0.0.1:{port}", **(webhook or {})},
        task={"max_retry_interval_seconds": 2, "max_retries": 1},
    )
    if demo_orders:
        generate_demo_erp(
            demo_database_path(settings), orders=demo_orders, seed=5, days=10, malformed=0
        )
    state = StateStore(settings.state_database_path)
    intake_state = StateStore(settings.state_database_path, durable=True)

    def destination(s: Settings) -> LoopbackDestination:
        return LoopbackDestination(server.url)

    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=destination
    )
    channel = RealtimeChannel(
        settings,
        state=state,
        intake_state=intake_state,
        destination_factory=destination,
        source_factory=build_source,
        secret=secret,
        outage_backoff=(0.05, 0.1, 0.2),
        limits=limits,
    )
    service = ExportService(settings, engine, realtime=channel)
    serving = asyncio.create_task(service.serve())
    try:
        while not channel.listening:
            assert not serving.done(), "the service did not start"
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield Channel(settings, service, state, store, server, client, port)
    finally:
        await service.stop()
        await serving
        intake_state.close()
        state.close()
