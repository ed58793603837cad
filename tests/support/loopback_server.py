"""The one loopback HTTP server the test doubles build on.

It binds 127.0.0.1 on a free port (or the port asked for), serves in a thread, and is a
context manager that always stops it: `with Subclass(...) as server: ... server.url ...`.
A subclass answers requests in `respond` (or takes over the whole pipeline in `reply_to`);
the base reads the request, counts what is in flight, applies the fault plan, and writes the
`Reply` as JSON (a `None` reply drops the connection).

The fault plan: `plan(*faults, when=...)` hits the next requests (`when(method, path)`
chooses which), `break_requests` fails every matching request from now on; `fail`,
`throttle`, `drop` and `slow` plan N of the usual kinds, each in the platform's own shape
(a subclass says how its 5xx and 429 answers look in `server_error` and `rate_limited`).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

Matcher = Callable[[str, str], bool]  # (method, path) -> does the fault apply?


@dataclass
class Fault:
    status: int | None = None  # answer with this status instead of the real answer
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds to wait before answering (or dropping)
    lost: bool = False  # do the work, then drop: the client never learns that it succeeded


@dataclass(frozen=True)
class RawBody:
    """A body sent as these bytes with this content type: a web page, truncated JSON..."""

    data: bytes
    content_type: str = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # JSON-able, or str / bytes sent as they are; None: no body
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the path as sent, with its query
    headers: Message
    raw: bytes
    arrived: float  # time.monotonic() when it came in
    in_flight: int  # requests being handled when it came in, itself included

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    @property
    def body(self) -> Any:
        """The body as JSON, as text when it is not JSON, None when empty."""
        if not self.raw:
            return None
        try:
            return json.loads(self.raw)
        except ValueError:
            return self.raw.decode(errors="replace")


def path_ends_with(suffix: str, method: str | None = None) -> Matcher:
    """A `when` for requests to paths ending in `suffix` (with this method, if given)."""
    return lambda m, path: path.endswith(suffix) and (method is None or m == method)


class FaultPlan:
    """Planned faults (each for one request, in order) and standing ones (every match)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: deque[tuple[Matcher | None, Fault]] = deque()
        self._standing: list[tuple[Matcher, Fault]] = []

    def plan(self, *faults: Fault, when: Matcher | None = None) -> None:
        with self._lock:
            self._planned.extend((when, fault) for fault in faults)

    def always(self, when: Matcher, fault: Fault) -> None:
        with self._lock:
            self._standing.append((when, fault))

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any: a standing one first, else the next planned."""
        with self._lock:
            for when, fault in self._standing:
                if when(method, path):
                    return fault
            for index, (when, fault) in enumerate(self._planned):
                if when is None or when(method, path):
                    del self._planned[index]
                    return fault
        return None

    def clear(self) -> None:
        """No more faults: every request from now on gets the real answer."""
        with self._lock:
            self._planned.clear()
            self._standing.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._planned)


class LoopbackServer:
    """A real HTTP server on loopback in a thread; subclasses say what it answers."""

    url_path = ""  # appended to the root URL in `url` (e.g. an API's version prefix)
    methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")
    json_content_type = "application/json"
    json_separators: tuple[str, str] | None = None

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fault_plan = FaultPlan()
        self.attempts = 0  # every request that reached the server, faulted or not
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests the server was handling at once
        self._counts_lock = threading.Lock()
        self._server = _Server((host, port), _RequestHandler)
        self._server.owner = self
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
        ]
        self._started = False
        self._stopped = False

    # --- life ------------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return self.root_url + self.url_path

    def in_background(self, target: Callable[[], None]) -> None:
        """Run `target` in a thread of its own from `start` on; `stopping` must end it."""
        self._threads.append(threading.Thread(target=target, daemon=True))

    def start(self) -> Self:
        self._started = True
        for thread in self._threads:
            thread.start()
        return self

    def stopping(self) -> None:
        """Called first by `stop`: end what `in_background` started."""

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.stopping()
        if self._started:  # shutdown() waits for serve_forever, which never ran otherwise
            self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- faults ----------------------------------------------------------------------------

    def plan(self, *faults: Fault, when: Matcher | None = None) -> None:
        """Each fault hits the next request that `when(method, path)` accepts (any request
        without `when`), in order."""
        self.fault_plan.plan(*faults, when=when)

    def break_requests(self, when: Matcher, status: int = 503) -> None:
        """Every request that `when(method, path)` accepts fails with `status` from now on."""
        self.fault_plan.always(when, Fault(status=status, body=self.server_error(status)))

    def fail(self, count: int = 1, status: int = 503, *, when: Matcher | None = None) -> None:
        self.plan(*[Fault(status=status, body=self.server_error(status))] * count, when=when)

    def throttle(self, count: int = 1, seconds: int = 1, *, when: Matcher | None = None) -> None:
        """The platform's 429, with its rate-limit headers saying to wait `seconds`."""
        self.plan(*[self.rate_limited(seconds)] * count, when=when)

    def drop(self, count: int = 1, *, when: Matcher | None = None) -> None:
        self.plan(*[Fault(drop=True)] * count, when=when)

    def slow(self, count: int = 1, seconds: float = 0.1, *, when: Matcher | None = None) -> None:
        self.plan(*[Fault(delay=seconds)] * count, when=when)

    def server_error(self, status: int) -> Any:
        """The body of the platform's 5xx answer."""
        return None

    def rate_limited(self, seconds: int) -> Fault:
        """The platform's 429 answer."""
        return Fault(status=429, headers={"Retry-After": str(seconds)})

    @staticmethod
    def faulted(fault: Fault | None, work: Callable[[], Reply | None]) -> Reply | None:
        """`work()`'s reply with `fault` applied: its delay, then a drop, its own answer, or
        the work (whose answer a lost fault drops)."""
        if fault is None:
            return work()
        if fault.delay:
            time.sleep(fault.delay)
        if fault.lost:
            work()
            return None
        if fault.drop:
            return None
        if fault.status is not None:
            return Reply(fault.status, fault.body, dict(fault.headers))
        return work()

    # --- answers ---------------------------------------------------------------------------

    def reply_to(self, request: Request) -> Reply | None:
        """The reply to one request (None drops the connection): the fault plan, else
        `respond`. Called before the reply leaves, while the request counts as in flight."""
        fault = self.fault_plan.take(request.method, request.path)
        return self.faulted(fault, lambda: self.respond(request))

    def respond(self, request: Request) -> Reply | None:
        return Reply(404, {"error": "not found"})

    def content_type(self, reply: Reply) -> str:
        return self.json_content_type

    def encode(self, body: Any) -> bytes:
        if body is None:
            return b""
        if isinstance(body, RawBody):
            return body.data
        if isinstance(body, bytes):
            return body
        if isinstance(body, str):
            return body.encode()
        return json.dumps(body, separators=self.json_separators).encode()

    def _handle(self, handler: _RequestHandler) -> Reply | None:
        with self._counts_lock:
            self.attempts += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            in_flight = self.in_flight
        try:
            arrived = time.monotonic()
            length = int(handler.headers.get("Content-Length") or 0)
            raw = handler.rfile.read(length) if length else b""
            if len(raw) < length:  # the client went away mid-request: nothing to answer
                return None
            headers = handler.headers
            return self.reply_to(
                Request(handler.command, handler.path, headers, raw, arrived, in_flight)
            )
        finally:
            # Done before the reply leaves, so the client's next request never overlaps it.
            with self._counts_lock:
                self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is normal
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    wbufsize = 64 * 1024  # the status line, headers and body leave in one write...
    disable_nagle_algorithm = True  # ...at once: Nagle against delayed ACKs costs 40 ms

    def log_message(self, format: str, *args: object) -> None:  # quiet tests
        return

    def _serve(self) -> None:
        owner = self.server.owner
        if self.command not in owner.methods:
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        reply = owner._handle(self)
        if reply is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = owner.encode(reply.body)
        headers = dict(reply.headers)
        content_type = headers.pop("Content-Type", None)
        if isinstance(reply.body, RawBody):
            content_type = reply.body.content_type
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", content_type or owner.content_type(reply))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
