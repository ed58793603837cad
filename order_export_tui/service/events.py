"""Every event that crosses the control socket, as one union: `ControlEvent`.

The engine's events (a run's progress) are re-exported from `engine.events`; the service's
own (a run request skipped, the failure e-mail, settings applied, real-time delivery) are
defined here. The wire codec (`service.wire`) is derived from `ControlEvent`, so an event
added here travels, and the dashboard tells events apart by these classes alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from order_export_tui.engine.events import (
    CANCELLED,
    CONFIRMED,
    FAILED,
    NOT_FOUND,
    NOT_SENT,
    REFUSED,
    SENT,
    SUCCEEDED,
    UNCHANGED,
    BatchFinished,
    BatchStarted,
    CancelRequested,
    EngineEvent,
    ItemSkipped,
    OrderNotFound,
    OrderResult,
    RetryScheduled,
    RunFinished,
    RunReport,
    RunSettings,
    RunStarted,
)
from order_export_tui.service.notify import NotificationResult
from order_export_tui.service.verify_answer import VerifyAnswer

__all__ = [
    "CANCELLED",
    "CONFIRMED",
    "DELIVERY_FAILING",
    "DELIVERY_OK",
    "FAILED",
    "NOT_FOUND",
    "NOT_SENT",
    "REFUSED",
    "SENT",
    "SUCCEEDED",
    "UNCHANGED",
    "BatchFinished",
    "BatchStarted",
    "CancelRequested",
    "ControlEvent",
    "DeliveryStateChanged",
    "EngineEvent",
    "EventDelivered",
    "EventHeld",
    "EventQueued",
    "EventRetried",
    "EventSkipped",
    "EventSuperseded",
    "FailureEmailOutcome",
    "ItemSkipped",
    "NotificationResult",
    "OrderNotFound",
    "OrderResult",
    "RealtimeActivity",
    "RetryScheduled",
    "RunFinished",
    "RunReport",
    "RunRequestSkipped",
    "RunSettings",
    "RunStarted",
    "ServiceEvent",
    "SettingsApplied",
    "VerifyFinished",
    "is_engine_event",
]

# --- the service's own -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRequestSkipped:
    at: datetime
    trigger: str
    reason: str


@dataclass(frozen=True, slots=True)
class FailureEmailOutcome:
    run_id: int
    result: NotificationResult


@dataclass(frozen=True, slots=True)
class SettingsApplied:
    """New settings are in force; `restart_needed` names the changed keys that are not."""

    restart_needed: tuple[str, ...]


# --- real-time delivery ------------------------------------------------------------------

DELIVERY_OK = "ok"
DELIVERY_FAILING = "failing"


@dataclass(frozen=True, slots=True)
class EventQueued:
    event_id: int


@dataclass(frozen=True, slots=True)
class EventDelivered:
    event_id: int
    order_id: str
    kind: str
    latency_seconds: float  # from acceptance to the destination's confirmation
    sent: bool = True  # False: the destination already had this very document
    # True: sent again because an earlier attempt may have reached the destination before
    # its process died unrecorded; counted as a re-send, not as a new delivery.
    resent: bool = False


@dataclass(frozen=True, slots=True)
class EventRetried:
    event_id: int
    error: str


@dataclass(frozen=True, slots=True)
class EventSkipped:
    event_id: int
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class EventHeld:
    event_id: int
    order_id: str


@dataclass(frozen=True, slots=True)
class EventSuperseded:
    """A payment callback older than the status already applied: recorded, no effect."""

    event_id: int
    order_id: str


@dataclass(frozen=True, slots=True)
class DeliveryStateChanged:
    """Delivery started failing (`state` "failing", with the error) or works again ("ok")."""

    state: str
    error: str | None


RealtimeActivity = (
    EventQueued
    | EventDelivered
    | EventRetried
    | EventSkipped
    | EventHeld
    | EventSuperseded
    | DeliveryStateChanged
)


@dataclass(frozen=True, slots=True)
class VerifyFinished:
    """A verify of the platform's copy ended (whoever asked for it: the schedule, a command,
    a dashboard), with what it found and repaired."""

    answer: VerifyAnswer


ServiceEvent = (
    RunRequestSkipped | FailureEmailOutcome | SettingsApplied | RealtimeActivity | VerifyFinished
)

# Everything `ExportControl.subscribe` delivers from the process that runs exports, whether
# that process is this one or one behind the control socket (`typing.get_args` lists them).
ControlEvent = EngineEvent | ServiceEvent

_ENGINE_EVENTS = get_args(EngineEvent)


def is_engine_event(event: object) -> bool:
    """True for a run's progress (the engine's events), as opposed to the service's."""
    return isinstance(event, _ENGINE_EVENTS)
