"""What keeps a sender without the secret from exhausting the intake (issue 15).

- `IntakeLimits`: the timeouts and caps, in one place.
- `guarded_protocol`: uvicorn's h11 protocol with a deadline for a request's headers (uvicorn
  has none: an idle or trickling connection was held forever) and a cap on connections that
  evicts the oldest connection still waiting for its headers, so a newcomer is served while
  hostile connections are held.
- `BodyBudget`: the body bytes read at once across all requests.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

MIB = 1024 * 1024


def _connection_cap(wanted: int) -> int:
    """`wanted`, kept well below the process's open-file limit (an accept that fails for
    want of a descriptor would refuse everyone)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - 128))


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    header_seconds: float = 10.0  # from connect (or the last answer) to a request's full headers
    body_seconds: float = 10.0  # to receive a whole body
    keep_alive_seconds: int = 5  # an idle connection between requests
    max_connections: int = 1000
    max_header_bytes: int = 16 * 1024  # h11's cap on the request line and headers
    body_bytes_in_flight: int = 16 * MIB  # across all requests; beyond: 503
    small_body_bytes: int = 64 * 1024  # bodies up to this size may use the last...
    small_body_reserve: int = 1 * MIB  # ...MiB of the budget, which large bodies cannot take

    @property
    def connection_cap(self) -> int:
        return _connection_cap(self.max_connections)


class BodyBudget:
    """Body bytes held by requests being read; `take` says whether more may be read."""

    def __init__(self, limits: IntakeLimits) -> None:
        self._total = limits.body_bytes_in_flight
        self._small = limits.small_body_bytes
        self._reserve = limits.small_body_reserve
        self.in_use = 0

    def take(self, size: int, request_total: int) -> bool:
        """Reserve `size` more bytes for a request that then holds `request_total`."""
        ceiling = self._total if request_total <= self._small else self._total - self._reserve
        if self.in_use + size > ceiling:
            return False
        self.in_use += size
        return True

    def give_back(self, size: int) -> None:
        self.in_use -= size


class _GuardedH11Protocol(H11Protocol):
    header_seconds: float
    cap: int
    # Connections waiting for a request's headers, oldest first (shared by one server's
    # connections; a dict keeps insertion order).
    waiting: dict[_GuardedH11Protocol, None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaited_cycle: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        if len(self.connections) > self.cap:
            oldest = next((c for c in self.waiting if c is not self), None)
            (oldest or self)._drop()

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_timer is not None and self.cycle is not self._awaited_cycle:
            self._headers_arrived()

    def on_response_complete(self) -> None:
        # Armed first: a pipelined request that the call below starts disarms it again.
        if not self.transport.is_closing():
            self._await_headers()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._headers_arrived()
        self._awaited_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.header_seconds, self._drop)
        self.waiting[self] = None

    def _headers_arrived(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self.waiting.pop(self, None)

    def _drop(self) -> None:
        self._headers_arrived()
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: IntakeLimits) -> type[H11Protocol]:
    """A protocol class for one server (`uvicorn.Config(http=...)`)."""
    return type(
        "GuardedH11Protocol",
        (_GuardedH11Protocol,),
        {"header_seconds": limits.header_seconds, "cap": limits.connection_cap, "waiting": {}},
    )
