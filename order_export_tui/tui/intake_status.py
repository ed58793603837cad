"""What the panels show of the real-time intake (the webhook server and its delivery).

`intake_status` reads it from the status snapshot of the process that runs exports;
`MissingIntake` stands in when there is none: "off" (webhook.enabled = false) or "not
available".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from order_export_tui.service.control import StatusSnapshot
from order_export_tui.settings import Settings

OFF = "off"
NOT_AVAILABLE = "not available"
LISTENING = "listening"


@dataclass(frozen=True, slots=True)
class IntakeStatus:
    state: str  # OFF | NOT_AVAILABLE | LISTENING | an error the intake reports
    listen: str = ""  # the address it listens on, "host:port"
    queued: int = 0  # events committed and waiting for delivery
    held: int = 0  # payment statuses waiting for their order to be known
    delivered: int = 0
    retried: int = 0
    skipped: int = 0

    @property
    def waiting(self) -> str:
        """What waits: "3 queued", "1 held", "3 queued, 1 held" (held only when there is
        one; short enough for the status panel's value column)."""
        if not self.held:
            return f"{self.queued:,} queued"
        if not self.queued:
            return f"{self.held:,} held"
        return f"{self.queued:,} queued, {self.held:,} held"

    @property
    def summary(self) -> str:
        if self.state == LISTENING:
            return f"listening on {self.listen}, {self.waiting}"
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


def intake_status(settings: Settings, status: StatusSnapshot | None) -> IntakeStatus:
    """The real-time intake as the process that runs exports reports it."""
    if status is None or status.intake.state == OFF:
        return MissingIntake(settings).status()
    queue = status.queue
    return IntakeStatus(
        LISTENING if status.intake.state == LISTENING else status.intake.state,
        listen=status.intake.listen,
        queued=queue.queued,
        held=queue.held,
        delivered=queue.delivered,
        retried=status.intake.retried,
        skipped=queue.skipped,
    )


def realtime_summary(settings: Settings, status: StatusSnapshot | None) -> str:
    """The real-time screen's first line: where the intake listens and its queue by state."""
    intake = intake_status(settings, status)
    if intake.state == OFF:
        return "Real-time intake is off (webhook.enabled = false in the settings)."
    if status is None or intake.state != LISTENING:
        return f"Real-time intake: {intake.summary}."
    queue = status.queue
    counts = (
        f"{queue.queued:,} waiting · {queue.held:,} held · {queue.delivered:,} delivered"
        f" · {queue.skipped:,} skipped"
    )
    return f"Listening on {intake.listen} · {counts}"
