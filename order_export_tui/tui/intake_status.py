"""What the panels show of the real-time intake (the webhook server and its delivery).

`OrderExportApp(intake=...)` takes any `IntakeProbe`; the status and counters panels call
`status()`. `ServiceIntake` reads the service's real-time channel; `MissingIntake` stands in
when there is none: "off" (webhook.enabled = false) or "not available".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from order_export_tui.service.delivery import EventRetried
from order_export_tui.service.export_service import ExportService
from order_export_tui.settings import Settings

OFF = "off"
NOT_AVAILABLE = "not available"
LISTENING = "listening"


@dataclass(frozen=True, slots=True)
class IntakeStatus:
    state: str  # OFF | NOT_AVAILABLE | LISTENING | an error the intake reports
    listen: str = ""  # the address it listens on, "host:port"
    queued: int = 0  # events committed and waiting for delivery
    delivered: int = 0
    retried: int = 0
    skipped: int = 0

    @property
    def summary(self) -> str:
        if self.state == LISTENING:
            return f"listening on {self.listen}, {self.queued:,} queued"
        if self.state == NOT_AVAILABLE and self.listen:
            return f"not available in this version (would listen on {self.listen})"
        return self.state


class IntakeProbe(Protocol):
    def status(self) -> IntakeStatus: ...


class MissingIntake:
    """What the dashboard shows while this version has no real-time intake."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def status(self) -> IntakeStatus:
        webhook = self.settings.webhook
        if not webhook.enabled:
            return IntakeStatus(OFF)
        return IntakeStatus(NOT_AVAILABLE, listen=webhook.listen)


class ServiceIntake:
    """The service's real-time channel (webhook intake and delivery), as the panels show it.

    The queue's counts come from the state database, read at most once per `every` seconds
    (the panels ask several times a second during a run); retries are counted as the
    service reports them.
    """

    def __init__(
        self,
        service: ExportService,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        every: float = 1.0,
    ) -> None:
        self.service = service
        self.retried = 0
        self._monotonic = monotonic
        self._every = every
        self._read_at = float("-inf")
        self._counts: dict[str, int] = {}
        service.subscribe(self._on_event)

    def _on_event(self, event: object) -> None:
        if isinstance(event, EventRetried):
            self.retried += 1

    def status(self) -> IntakeStatus:
        realtime = self.service.realtime
        if realtime is None:
            return MissingIntake(self.service.settings).status()
        now = self._monotonic()
        if now - self._read_at >= self._every:
            self._counts = self.service.engine.state.event_counts()
            self._read_at = now
        counts = self._counts
        return IntakeStatus(
            LISTENING if realtime.listening else "starting",
            listen=realtime.listen,
            queued=counts.get("queued", 0) + counts.get("held", 0),
            delivered=counts.get("delivered", 0),
            retried=self.retried,
            skipped=counts.get("skipped", 0),
        )
