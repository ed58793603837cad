"""The real-time intake: the webhook server of interfaces.md §4.

A Starlette app served by uvicorn in the caller's event loop (the daemon's or the
dashboard's), with uvicorn's own signal handling switched off: the host process owns
SIGINT/SIGTERM. An event is committed to the state database (a connection that syncs every
commit to disk) before it is answered 202; nothing invalid is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import socket
from collections.abc import Callable, Generator
from datetime import datetime

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from order_export_tui.service.webhook_events import (
    CHECKS,
    InvalidEventError,
    dedupe_key,
    parse_json_object,
)
from order_export_tui.settings import parse_listen
from order_export_tui.state import ORDER_COMPLETED, PAYMENT_STATUS, StateStore

log = logging.getLogger("order_export.intake")

MAX_BODY_BYTES = 1024 * 1024
SIGNATURE_HEADER = "x-signature"


class BodyTooLargeError(Exception):
    pass


class IntakeError(Exception):
    """The intake cannot serve (its address is taken, say)."""


def signature_for(secret: str, body: bytes) -> str:
    """The `X-Signature` value the webstore sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(signature_for(secret, body).encode(), header.strip().encode())


async def _read_limited(request: Request) -> bytes:
    """The body, refusing (without reading on) anything over MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLargeError
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLargeError
    return bytes(body)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Intake:
    """The webhook endpoints; `on_accepted(event_id)` wakes the delivery worker."""

    def __init__(
        self,
        *,
        state: StateStore,
        secret: str,
        clock: Callable[[], datetime],
        on_accepted: Callable[[int], None],
        health: Callable[[], dict[str, object]],
    ) -> None:
        self.state = state
        self._secret = secret
        self._clock = clock
        self._on_accepted = on_accepted
        self._health = health
        self.accepted = 0
        self.refused = 0
        self.app = Starlette(
            routes=[
                Route("/webhooks/order-completed", self._order_completed, methods=["POST"]),
                Route("/webhooks/payment-status", self._payment_status, methods=["POST"]),
                Route("/healthz", self._healthz, methods=["GET"]),
            ]
        )

    async def _order_completed(self, request: Request) -> Response:
        return await self._accept(request, ORDER_COMPLETED)

    async def _payment_status(self, request: Request) -> Response:
        return await self._accept(request, PAYMENT_STATUS)

    async def _healthz(self, request: Request) -> Response:
        health = self._health()
        return JSONResponse(health, status_code=200 if health.get("status") == "ok" else 503)

    async def _accept(self, request: Request, kind: str) -> Response:
        try:
            body = await _read_limited(request)
        except BodyTooLargeError:
            return self._refuse(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        if not _signature_ok(self._secret, body, request.headers.get(SIGNATURE_HEADER)):
            return self._refuse(401, "missing or wrong X-Signature")
        try:
            event = parse_json_object(body)
            order_id = CHECKS[kind](event)
        except InvalidEventError as error:
            return self._refuse(400, str(error))
        event_id, first = self.state.enqueue_event(
            kind=kind,
            order_id=order_id,
            payload=orjson.dumps(event),
            dedupe_key=dedupe_key(kind, event),
            now=self._clock(),
        )
        self.accepted += 1
        if first:
            log.info("accepted %s event %s for %s", kind, event_id, order_id)
            self._on_accepted(event_id)
        return JSONResponse({"event_id": event_id}, status_code=202)

    def _refuse(self, status: int, message: str) -> JSONResponse:
        self.refused += 1
        log.warning("refused a webhook request (%s): %s", status, message)
        return _error(status, message)


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon or the dashboard owns SIGINT/SIGTERM


class IntakeServer:
    """Serves an `Intake` on `host:port` inside the running event loop."""

    def __init__(self, intake: Intake, listen: str) -> None:
        self.listen = listen
        host, port = parse_listen(listen)
        config = uvicorn.Config(
            intake.app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            limit_concurrency=1000,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._server.started

    async def start(self) -> None:
        # The socket is bound here, not by uvicorn: uvicorn calls sys.exit() when it cannot
        # bind, which no caller can catch cleanly. A taken address is an `IntakeError`.
        listening = self._bind()
        self._task = asyncio.create_task(self._serve(listening))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise IntakeError(f"the webhook intake cannot listen on {self.listen}")
            await asyncio.sleep(0.01)

    def _bind(self) -> socket.socket:
        host, port = parse_listen(self.listen)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as error:
            raise IntakeError(
                f"the webhook intake cannot listen on {self.listen} (webhook.listen):"
                f" unknown host ({error.strerror})"
            ) from None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)
        except OSError as error:
            sock.close()
            reason = error.strerror or str(error)
            raise IntakeError(
                f"the webhook intake cannot listen on {self.listen} (webhook.listen): {reason}"
            ) from None
        sock.setblocking(False)
        return sock

    async def _serve(self, listening: socket.socket) -> None:
        try:
            await self._server.serve(sockets=[listening])
        except SystemExit:  # uvicorn's way to say it could not start; never the process's
            log.error("the webhook intake on %s stopped", self.listen)
        finally:
            listening.close()

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
