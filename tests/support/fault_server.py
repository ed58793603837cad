"""A real HTTP server on 127.0.0.1 with injectable faults.

Faults are planned per request, in order: a status (with headers, e.g. 429 with the
platform's rate-limit headers), a dropped connection, or latency. Requests without a planned
fault go to the handler the test installs. It runs in a thread, so async clients in the
test's event loop talk to it over a real socket.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    status: int | None = None  # answer with this status instead of the handler's
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds to wait before answering (or dropping)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


Handler = Callable[[Received], tuple[int, Any, dict[str, str]]]


def _default_handler(request: Received) -> tuple[int, Any, dict[str, str]]:
    return 200, {}, {}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        return  # a dropped connection is a planned fault, not news


class FaultServer:
    def __init__(self, handler: Handler = _default_handler) -> None:
        self.handler = handler
        self.faults: deque[Fault] = deque()
        self.received: list[Received] = []
        self.attempts = 0  # every request that reached the server, faulted or not
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests the server was handling at once
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._make_request_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def plan(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self.attempts += 1
            return self.faults.popleft() if self.faults else None

    def _make_request_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle on, the body waits for the
            # client's delayed ACK (40 ms) on every keep-alive request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:  # quiet tests
                return

            def _handle(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._handle_one()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fault = server._next_fault()
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and fault.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                if fault is not None and fault.status is not None:
                    self._answer(fault.status, fault.body, fault.headers)
                    return
                request = Received(
                    self.command, self.path, dict(self.headers.items()), body, time.monotonic()
                )
                with server._lock:
                    server.received.append(request)
                status, payload, headers = server.handler(request)
                self._answer(status, payload, headers)

            def _answer(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        return RequestHandler
