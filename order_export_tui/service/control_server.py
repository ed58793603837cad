"""The control server: the `ExportControl` of the process that runs exports, served as HTTP
with JSON (and a newline-delimited JSON event stream) on its Unix control socket.

Attached dashboards and the `status` / `run` / `cancel` / `retry` commands are its clients
(`service.control_client`). It never listens on TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from order_export_tui.engine.backfill import backfill_day
from order_export_tui.service.control import Event, ExportControl
from order_export_tui.service.control_socket import bind_control_socket, remove_control_socket
from order_export_tui.service.embedded_server import EmbeddedServer
from order_export_tui.service.wire import encode

log = logging.getLogger("order_export.control")

HEARTBEAT_SECONDS = 2.0
# A client that falls this many events behind is dropped; it reconnects and reads the status.
CLIENT_QUEUE_LIMIT = 10_000
MAX_REQUEST_BYTES = 4 * 1024 * 1024
TRIGGERS = ("manual", "retry", "resend", "backfill")


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(encode(value)), status, media_type="application/json")


def _problem(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status, media_type="application/json")


class _Refused(Exception):
    """A request refused before its body was read to the end (answered with `status`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, _Refused)
    answer = _problem(error.status, str(error))
    # Closing is what stops the reading: kept open, the rest of the body would be drained.
    answer.headers["connection"] = "close"
    return answer


class _Broadcast:
    """Each event encoded once, then queued for every connected client."""

    def __init__(self) -> None:
        self.clients: set[asyncio.Queue[bytes | None]] = set()

    def __call__(self, event: Event) -> None:
        if not self.clients:
            return
        line = orjson.dumps(encode(event)) + b"\n"
        for queue in list(self.clients):
            try:
                queue.put_nowait(line)
            except asyncio.QueueFull:
                self.drop(queue)

    def drop(self, queue: asyncio.Queue[bytes | None]) -> None:
        """Stop sending to this client and end its stream. Its backlog goes: a client that far
        behind reads the status afresh when it reconnects, and a full queue would have no room
        for the end-of-stream marker (the stream would stay open on heartbeats alone)."""
        self.clients.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)


class ControlServer:
    def __init__(
        self, control: ExportControl, path: Path, *, announce: str = "control socket at %s"
    ) -> None:
        self.control = control
        self.path = path
        self._announce = announce
        self._broadcast = _Broadcast()
        self._unsubscribe = control.subscribe(self._broadcast)
        self.app = Starlette(
            routes=[
                Route("/status", self._status, methods=["GET"]),
                Route("/runs", self._runs, methods=["GET"]),
                Route("/runs", self._start_run, methods=["POST"]),
                Route("/cancel", self._cancel, methods=["POST"]),
                Route("/retry", self._retry, methods=["POST"]),
                Route("/skipped", self._skipped, methods=["GET"]),
                Route("/realtime", self._realtime, methods=["GET"]),
                Route("/settings", self._settings, methods=["GET"]),
                Route("/logs", self._logs, methods=["GET"]),
                Route("/settings", self._save_settings, methods=["PUT"]),
                Route("/verify", self._verify, methods=["POST"]),
                Route("/events", self._events, methods=["GET"]),
            ],
            exception_handlers={_Refused: _refused},
        )
        self._server: EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket = None

    @property
    def clients(self) -> int:
        return len(self._broadcast.clients)

    async def start(self) -> None:
        """Bind the socket (0600; `ControlSocketError` says why not) and serve it."""
        self._socket = bind_control_socket(self.path)
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=30
        )
        self._server = EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                with contextlib.suppress(SystemExit):
                    await self._task
                break
            await asyncio.sleep(0.01)
        log.info(self._announce, self.path)

    async def stop(self) -> None:
        self._unsubscribe()
        for queue in list(self._broadcast.clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(SystemExit):
                await self._task
        if self._socket is not None:
            remove_control_socket(self.path, self._socket)

    # --- endpoints ----------------------------------------------------------------------

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await _read_body(request)
        if not raw:
            return {}
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data

    async def _status(self, request: Request) -> Response:
        return _json(await self.control.status())

    async def _runs(self, request: Request) -> Response:
        return _json(await self.control.recent_runs(_limit(request, 50)))

    async def _skipped(self, request: Request) -> Response:
        return _json(await self.control.skipped_orders(_limit(request, 500)))

    async def _realtime(self, request: Request) -> Response:
        return _json(await self.control.recent_events(_limit(request, 200)))

    async def _settings(self, request: Request) -> Response:
        return _json(await self.control.read_settings())

    async def _logs(self, request: Request) -> Response:
        return _json(await self.control.run_logs())

    async def _start_run(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            trigger = body.get("trigger", "manual")
            only = _ids(body.get("only"))
            since = body.get("since")
            if trigger not in TRIGGERS:
                raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}")
            if since is not None and not isinstance(since, str):
                raise ValueError("since must be a day, YYYY-MM-DD")
            if since is not None:
                backfill_day(since, date.today())  # refused here as `run --since` refuses it
        except ValueError as error:
            return _problem(400, str(error))
        return _json(await self.control.start_run(trigger, only=only, since=since))

    async def _cancel(self, request: Request) -> Response:
        return _json(await self.control.cancel())

    async def _retry(self, request: Request) -> Response:
        try:
            only = _ids((await self._body(request)).get("order_ids"))
        except ValueError as error:
            return _problem(400, str(error))
        return _json(await self.control.retry_skipped(only))

    async def _save_settings(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            changes, revision = body.get("changes"), body.get("revision")
            if not isinstance(changes, dict) or not all(isinstance(k, str) for k in changes):
                raise ValueError(
                    'changes must be a table of the dotted keys to set, e.g. {"task.batch_size": 7}'
                )
            if revision is not None and not isinstance(revision, str):
                raise ValueError("revision must be a string or null")
        except ValueError as error:
            return _problem(400, str(error))
        return _json(await self.control.save_settings(changes, revision))

    async def _verify(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            since, repair = body.get("since"), body.get("repair", False)
            if since is not None and not isinstance(since, str):
                raise ValueError("since must be a day, YYYY-MM-DD")
            if since is not None:
                backfill_day(since, date.today())  # refused as `verify --since` refuses it
            if not isinstance(repair, bool):
                raise ValueError("repair must be true or false")
        except ValueError as error:
            return _problem(400, str(error))
        return _json(await self.control.verify(since, repair))

    async def _events(self, request: Request) -> Response:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(CLIENT_QUEUE_LIMIT)
        self._broadcast.clients.add(queue)
        return StreamingResponse(self._stream(queue), media_type="application/x-ndjson")

    async def _stream(self, queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        try:
            yield b'{"type": "Hello"}\n'
            while True:
                try:
                    line = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    line = b'{"type": "Heartbeat"}\n'
                if line is None:
                    return
                # Everything already queued goes in the same write: a busy engine leaves the
                # loop few turns, and one line per turn would fall ever further behind.
                lines = [line]
                while not queue.empty() and len(lines) < 1000:
                    more = queue.get_nowait()
                    if more is None:
                        yield b"".join(lines)
                        return
                    lines.append(more)
                yield b"".join(lines)
        finally:
            self._broadcast.clients.discard(queue)


async def _read_body(request: Request) -> bytes:
    """The body, refused by its declared length or as soon as it passes the limit: no more
    than MAX_REQUEST_BYTES is ever held. A client that hangs up mid-body is no error here."""
    too_large = _Refused(413, f"the body is larger than {MAX_REQUEST_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_REQUEST_BYTES:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise _Refused(400, "the client went away before the body ended") from None
    return b"".join(chunks)


def _limit(request: Request, default: int) -> int:
    try:
        return max(1, min(int(request.query_params.get("limit", default)), 10_000))
    except ValueError:
        return default


def _ids(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("order ids must be a list of strings")
    return list(value)
