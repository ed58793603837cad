"""`AttachedControl`: the `ExportControl` of a daemon (or hosting dashboard) that runs exports
in another process, reached over its Unix control socket.

`serve()` keeps the event stream open: when the process goes away the client says so
(`Disconnected`), keeps trying, and says `Reattached` once a process answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from order_export_tui.engine.fanout import Listeners
from order_export_tui.service.control import (
    Answer,
    Disconnected,
    Event,
    Listener,
    Reattached,
    RunLogFile,
    SaveAnswer,
    SettingsView,
    StatusSnapshot,
)
from order_export_tui.service.control_socket import short_address
from order_export_tui.service.records import RealtimeEventRecord, RunRecord, SkippedOrder
from order_export_tui.service.verify_answer import VerifyAnswer
from order_export_tui.service.wire import WireError, decode, decode_event

REQUEST_TIMEOUT_SECONDS = 10.0
# A verify answers once it has read the whole copy (and repaired it): no read deadline.
VERIFY_TIMEOUT = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, read=None)
# No line (not even a heartbeat) for this long: the process is gone or stuck.
STREAM_SILENCE_SECONDS = 6.0
RECONNECT_SECONDS = 0.5


class NotAttachedError(Exception):
    """No process answers on the control socket (or it stopped answering)."""


class AttachedControl:
    attached = True

    def __init__(self, socket_path: Path, *, reconnect_seconds: float = RECONNECT_SECONDS) -> None:
        self.socket_path = socket_path
        self.connected = False
        self._reconnect_seconds = reconnect_seconds
        self._listeners: Listeners[Event] = Listeners("control")
        self._stopping = asyncio.Event()
        self._stream_task: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def serve(self) -> None:
        """Follow the event stream until `stop()`, re-attaching whenever the process is back."""
        first = True
        while not self._stopping.is_set():
            self._stream_task = asyncio.ensure_future(self._follow(announce=not first))
            try:
                await self._stream_task
            except asyncio.CancelledError:
                if not self._stopping.is_set():
                    raise  # the caller cancelled serve() itself
                return
            except (httpx.HTTPError, OSError, NotAttachedError, WireError, ValueError) as error:
                reason = _reason(error)
            else:
                reason = "the process closed the control socket"
            first = False
            if self.connected:
                self.connected = False
                self._emit(Disconnected(reason))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._reconnect_seconds)

    async def stop(self, *, abandon_batch: bool = False) -> None:
        """Stop following; the process that runs exports goes on."""
        self._stopping.set()
        if self._stream_task is not None:
            self._stream_task.cancel()

    async def _follow(self, *, announce: bool) -> None:
        with short_address(self.socket_path) as address:
            transport = httpx.AsyncHTTPTransport(uds=address)
            timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, read=STREAM_SILENCE_SECONDS)
            async with (
                httpx.AsyncClient(
                    transport=transport, base_url="http://order-export", timeout=timeout
                ) as client,
                client.stream("GET", "/events") as response,
            ):
                if response.status_code != 200:
                    raise NotAttachedError(f"the control socket answered {response.status_code}")
                # Lines already received are handled in one go (no turn of the event loop
                # between them): a busy dashboard must not fall behind the daemon.
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    data = orjson.loads(line)
                    event = decode_event(data)
                    if event is not None:
                        self._emit(event)
                    elif isinstance(data, dict) and data.get("type") == "Hello":
                        self.connected = True
                        if announce:
                            status = await self.status()
                            self._emit(Reattached(status.process))
                    # else: a heartbeat, or an event of a newer version

    # --- the interface ------------------------------------------------------------------

    async def status(self) -> StatusSnapshot:
        return await self._call("GET", "/status", StatusSnapshot)

    async def start_run(
        self, trigger: str = "manual", *, only: list[str] | None = None, since: str | None = None
    ) -> Answer:
        body = {"trigger": trigger, "only": only, "since": since}
        return await self._call("POST", "/runs", Answer, body)

    async def cancel(self) -> Answer:
        return await self._call("POST", "/cancel", Answer)

    async def retry_skipped(self, order_ids: list[str] | None = None) -> Answer:
        return await self._call("POST", "/retry", Answer, {"order_ids": order_ids})

    async def recent_runs(self, limit: int = 50) -> list[RunRecord]:
        return await self._call("GET", f"/runs?limit={limit}", list[RunRecord])

    async def skipped_orders(self, limit: int = 500) -> list[SkippedOrder]:
        return await self._call("GET", f"/skipped?limit={limit}", list[SkippedOrder])

    async def recent_events(self, limit: int = 200) -> list[RealtimeEventRecord]:
        return await self._call("GET", f"/realtime?limit={limit}", list[RealtimeEventRecord])

    async def read_settings(self) -> SettingsView:
        return await self._call("GET", "/settings", SettingsView)

    async def run_logs(self) -> list[RunLogFile]:
        return await self._call("GET", "/logs", list[RunLogFile])

    async def save_settings(
        self, changes: dict[str, Any], revision: str | None = None
    ) -> SaveAnswer:
        body = {"changes": changes, "revision": revision}
        return await self._call("PUT", "/settings", SaveAnswer, body)

    async def verify(self, since: str | None = None, repair: bool = False) -> VerifyAnswer:
        body = {"since": since, "repair": repair}
        return await self._call("POST", "/verify", VerifyAnswer, body, timeout=VERIFY_TIMEOUT)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    # --- inside -------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        answer: Any,
        body: dict[str, Any] | None = None,
        *,
        timeout: httpx.Timeout | float = REQUEST_TIMEOUT_SECONDS,
    ) -> Any:
        """The control socket's answer to `method path`, decoded as the type `answer`."""
        try:
            with short_address(self.socket_path) as address:
                transport = httpx.AsyncHTTPTransport(uds=address)
                async with httpx.AsyncClient(
                    transport=transport,
                    base_url="http://order-export",
                    timeout=timeout,
                ) as client:
                    content = None if body is None else orjson.dumps(body)
                    response = await client.request(method, path, content=content)
        except (httpx.HTTPError, OSError) as error:
            raise NotAttachedError(_reason(error)) from None
        if response.status_code != 200:
            raise NotAttachedError(f"the control socket answered {response.status_code}")
        try:
            return decode(orjson.loads(response.content), answer)
        except (ValueError, WireError) as error:
            raise NotAttachedError(f"the control socket's answer is unreadable: {error}") from None

    def _emit(self, event: Event) -> None:
        self._listeners.emit(event)


def _reason(error: BaseException) -> str:
    """Why the connection ended, in an operator's words: never the HTTP library's own text
    ("peer closed connection without sending complete message body ...")."""
    if isinstance(error, httpx.ReadTimeout):
        return "the process stopped answering"
    if isinstance(error, FileNotFoundError | ConnectionRefusedError | httpx.ConnectError):
        return "no process answers on the control socket"
    if isinstance(error, NotAttachedError):
        return str(error) or "no process answers on the control socket"
    if isinstance(error, WireError | ValueError):
        return "the process sent what this dashboard cannot read (is it another version?)"
    return "the connection to the process broke off"


async def attach(socket_path: Path) -> AttachedControl | None:
    """A client of the process answering at `socket_path`, or None when none answers."""
    control = AttachedControl(socket_path)
    try:
        await control.status()
    except NotAttachedError:
        return None
    return control
