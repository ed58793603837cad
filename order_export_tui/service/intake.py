"""The real-time intake: the webhook server of interfaces.md §4.

A Starlette app served by uvicorn in the caller's event loop (the daemon's or the
dashboard's), with uvicorn's own signal handling switched off: the host process owns
SIGINT/SIGTERM. An event is committed to the state database (a connection that syncs every
commit to disk) before it is answered 202; nothing invalid is stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from order_export_tui.service.embedded_server import EmbeddedServer
from order_export_tui.service.intake_guard import (
    ACCEPTS_PER_TURN,
    AcceptFailureLog,
    BodyBudget,
    IntakeLimits,
    guarded_protocol,
    raise_open_file_limit,
)
from order_export_tui.service.webhook_events import (
    CHECKS,
    InvalidEventError,
    dedupe_key,
    parse_json_object,
    stored_event,
    webhook_id_key,
)
from order_export_tui.service.webhook_signatures import (
    X_SIGNATURE,
    WeakSecretError,
    signature_for,
    signature_scheme,
)
from order_export_tui.settings import parse_listen
from order_export_tui.state import ORDER_COMPLETED, PAYMENT_STATUS, StateStore, StateWriteError

log = logging.getLogger("order_export.intake")

MAX_BODY_BYTES = 1024 * 1024
REFUSALS_LOGGED_EVERY_SECONDS = 10.0

__all__ = ["Intake", "IntakeError", "IntakeLimits", "IntakeServer", "signature_for"]


class IntakeError(Exception):
    """The intake cannot serve (its address is taken, its secret is too weak, say)."""


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str, *, close: bool = False) -> JSONResponse:
    # `Connection: close` when the body was not read to its end: the connection cannot carry
    # another request, and a sender trickling the rest must not keep it.
    headers = {"Connection": "close"} if close else None
    if status == 503:
        headers = {**(headers or {}), "Retry-After": "1"}
    return JSONResponse({"error": message}, status_code=status, headers=headers)


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
        scheme: str = X_SIGNATURE,
        tolerance_seconds: int = 300,
        limits: IntakeLimits | None = None,
    ) -> None:
        try:
            self._scheme = signature_scheme(scheme, secret, tolerance_seconds)
        except WeakSecretError as error:
            raise IntakeError(f"the webhook intake does not start: {error}") from None
        self.state = state
        self._clock = clock
        self._on_accepted = on_accepted
        self._health = health
        self.limits = limits or IntakeLimits()
        self._budget = BodyBudget(self.limits)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-writer")
        self.accepted = 0
        self.refused = 0
        self._refusals_unlogged = 0
        self._refusal_logged_at = -REFUSALS_LOGGED_EVERY_SECONDS
        self.app = Starlette(
            routes=[
                Route("/webhooks/order-completed", self._order_completed, methods=["POST"]),
                Route("/webhooks/payment-status", self._payment_status, methods=["POST"]),
                Route("/healthz", self._healthz, methods=["GET"]),
            ]
        )

    def close(self) -> None:
        """Wait for the commit in progress (if any) and end the writer thread."""
        self._writer.shutdown(wait=True)

    @property
    def body_bytes_in_flight(self) -> int:
        return self._budget.in_use

    async def _order_completed(self, request: Request) -> Response:
        return await self._accept(request, ORDER_COMPLETED)

    async def _payment_status(self, request: Request) -> Response:
        return await self._accept(request, PAYMENT_STATUS)

    async def _healthz(self, request: Request) -> Response:
        health = self._health()
        return JSONResponse(health, status_code=200 if health.get("status") == "ok" else 503)

    async def _accept(self, request: Request, kind: str) -> Response:
        # The headers first: a request that cannot be genuine is refused before its body.
        verdict = self._scheme.check_headers(request.headers, self._clock())
        if verdict.refusal is not None:
            return self._refuse(401, verdict.refusal, close=True)
        try:
            body = await self._read_body(request)
        except _Refused as refused:
            return self._refuse(refused.status, refused.message, close=True)
        if not self._scheme.verify(body, request.headers):
            return self._refuse(401, f"the signature ({self._scheme.name}) does not match")
        try:
            event = parse_json_object(body)
            order_id = CHECKS[kind](event)
        except InvalidEventError as error:
            return self._refuse(400, str(error))
        event = stored_event(kind, event)
        identity = (
            dedupe_key(kind, event)
            if verdict.identity is None
            else webhook_id_key(verdict.identity)
        )
        # Committed (and synced to disk) in the intake's one writer thread: the event loop
        # goes on serving other connections meanwhile.
        try:
            event_id, first = await asyncio.get_running_loop().run_in_executor(
                self._writer,
                functools.partial(
                    self.state.enqueue_event,
                    kind=kind,
                    order_id=order_id,
                    payload=orjson.dumps(event),
                    dedupe_key=identity,
                    now=self._clock(),
                ),
            )
        except StateWriteError as error:  # not recorded: never a 202 (a server restarting)
            log.error("webhook event not recorded: %s", error)
            return self._refuse(503, "the event could not be recorded; try again")
        self.accepted += 1
        if first:
            log.info("accepted %s event %s for %s", kind, event_id, order_id)
            self._on_accepted(event_id)
        return JSONResponse({"event_id": event_id}, status_code=202)

    async def _read_body(self, request: Request) -> bytes:
        """The body, within MAX_BODY_BYTES, the body budget and the body deadline."""
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit() or len(declared) > 12:
                raise _Refused(400, "Content-Length is not a number")
            if int(declared) > MAX_BODY_BYTES:
                raise _Refused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        expected = 0 if declared is None else int(declared)
        held = 0
        chunks: list[bytes] = []
        size = 0
        try:
            if expected and not self._budget.take(expected, expected):
                raise _Refused(503, "too many request bodies at once; try again")
            held = expected
            async with asyncio.timeout(self.limits.body_seconds):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise _Refused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
                    if size > held:  # a chunked body: its bytes are taken as they come
                        if not self._budget.take(size - held, size):
                            raise _Refused(503, "too many request bodies at once; try again")
                        held = size
                    chunks.append(chunk)
        except TimeoutError:
            raise _Refused(408, "the body did not arrive in time") from None
        except ClientDisconnect:
            raise _Refused(400, "the sender went away before the body ended") from None
        finally:
            self._budget.give_back(held)
        return b"".join(chunks)

    def _refuse(self, status: int, message: str, *, close: bool = False) -> JSONResponse:
        """The answer to a refused request. Refusals are logged at most every few seconds:
        a flood of forged requests must not flood the log."""
        self.refused += 1
        self._refusals_unlogged += 1
        now = time.monotonic()
        if now - self._refusal_logged_at >= REFUSALS_LOGGED_EVERY_SECONDS:
            more = self._refusals_unlogged - 1
            log.warning(
                "refused a webhook request (%s): %s%s",
                status,
                message,
                f" (and {more} more since the last such line)" if more else "",
            )
            self._refusal_logged_at = now
            self._refusals_unlogged = 0
        return _error(status, message, close=close)


class IntakeServer:
    """Serves an `Intake` on `host:port` inside the running event loop."""

    def __init__(self, intake: Intake, listen: str) -> None:
        self.listen = listen
        host, port = parse_listen(listen)
        raise_open_file_limit()  # before the connection cap is derived from it
        limits = intake.limits
        config = uvicorn.Config(
            intake.app,
            host=host,
            port=port,
            http=guarded_protocol(limits),
            log_level="warning",
            lifespan="off",
            access_log=False,
            # Beyond the connection cap the oldest connection still sending its headers is
            # dropped (intake_guard); this (with room for connections being dropped) bounds
            # the requests answered at once, with a 503 beyond.
            limit_concurrency=limits.connection_cap + 64,
            timeout_keep_alive=limits.keep_alive_seconds,
            h11_max_incomplete_event_size=limits.max_header_bytes,
            backlog=ACCEPTS_PER_TURN,
        )
        self._server = EmbeddedServer(config)
        self._intake = intake
        self._task: asyncio.Task[None] | None = None
        self._accept_failures: AcceptFailureLog | None = None

    @property
    def listening(self) -> bool:
        return self._server.started

    async def start(self) -> None:
        # The socket is bound here, not by uvicorn: uvicorn calls sys.exit() when it cannot
        # bind, which no caller can catch cleanly. A taken address is an `IntakeError`.
        listening = self._bind()
        self._accept_failures = AcceptFailureLog(asyncio.get_running_loop())
        self._accept_failures.install()
        self._task = asyncio.create_task(self._serve(listening))
        while not self._server.started:
            if self._task.done():
                self._accept_failures.uninstall()
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
        if self._accept_failures is not None:
            self._accept_failures.uninstall()
        self._intake.close()
