"""A real HTTP server on 127.0.0.1 with injectable faults.

Faults are planned per request, in order: a status (with headers, e.g. 429 with the
platform's rate-limit headers), a dropped connection, or latency. Requests without a planned
fault go to the handler the test installs. It runs in a thread, so async clients in the
test's event loop talk to it over a real socket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.loopback_server import Fault, LoopbackServer, RawBody, Reply, Request

__all__ = ["Fault", "FaultServer", "Handler", "RawBody", "Received"]


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


class FaultServer(LoopbackServer):
    def __init__(self, handler: Handler = _default_handler) -> None:
        super().__init__()
        self.handler = handler
        self.received: list[Received] = []
        self._lock = threading.Lock()

    def respond(self, request: Request) -> Reply:
        received = Received(
            request.method,
            request.target,
            dict(request.headers.items()),
            request.body,
            time.monotonic(),
        )
        with self._lock:
            self.received.append(received)
        status, payload, headers = self.handler(received)
        return Reply(status, payload, headers)
