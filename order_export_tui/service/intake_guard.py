"""What keeps a sender without the secret from exhausting the intake (issue 15).

- `IntakeLimits`: the timeouts and caps, in one place.
- `guarded_protocol`: uvicorn's h11 protocol with a deadline for a request's headers (uvicorn
  has none: an idle or trickling connection was held forever) and a cap on connections that
  evicts the oldest connection still waiting for its headers, so a newcomer is served while
  hostile connections are held.
- `BodyBudget`: the body bytes read at once across all requests.
- `raise_open_file_limit` and `AcceptFailureLog`: descriptors to spare, and a quiet log when
  they run out anyway.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("order_export.intake")

MIB = 1024 * 1024
# Connections the event loop accepts at one readiness of the listening socket (uvicorn's
# `backlog`). Accepted connections hold a descriptor for a few turns of the loop before the
# cap can close one, so the cap leaves room for several such bursts.
ACCEPTS_PER_TURN = 64
# Descriptors the process needs besides the intake's connections: the state database and its
# journal, log files, the control socket and its clients, the ERP and the destination.
OTHER_DESCRIPTORS = 128
_ACCEPT_FAILURE = "socket.accept() out of system resource"


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (systemd and most shells start at 1,024
    whatever the hard limit allows); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def _connection_cap(wanted: int) -> int:
    """`wanted`, kept below the process's open-file limit with room for the rest of the
    process and for connections accepted but not yet counted: an accept that fails for want
    of a descriptor refuses everyone."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - OTHER_DESCRIPTORS - 4 * ACCEPTS_PER_TURN))


class AcceptFailureLog:
    """An event loop exception handler that turns asyncio's traceback for every failed
    accept (thousands a second once descriptors run out) into one log line a second at most;
    anything else goes to the handler it replaces."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        self._logged_at = -1.0
        self._unlogged = 0

    def install(self) -> None:
        self._loop.set_exception_handler(self)

    def uninstall(self) -> None:
        if self._loop.get_exception_handler() is self:
            self._loop.set_exception_handler(self._previous)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_FAILURE:
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self._logged_at < 1.0:
            self._unlogged += 1
            return
        error = context.get("exception")
        reason = getattr(error, "strerror", None) or str(error)
        more = f" ({self._unlogged} more since the last line)" if self._unlogged else ""
        log.warning("cannot accept a connection: %s; retrying in a second%s", reason, more)
        self._logged_at = now
        self._unlogged = 0


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
