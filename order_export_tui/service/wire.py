"""The control interface's plain data as JSON, both ways.

A dataclass travels as `{"type": "<ClassName>", <fields>}`, a datetime as
`{"$datetime": "<ISO 8601>"}`; everything else is JSON already. Only the classes registered
here can be rebuilt, so an attached client never constructs anything the daemon did not mean.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from order_export_tui.engine import events as engine_events
from order_export_tui.service import control, delivery, export_service, notify
from order_export_tui.state import RealtimeEventRecord, RunRecord, SkippedOrder

_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        engine_events.RunReport,
        engine_events.RunSettings,
        engine_events.RunStarted,
        engine_events.BatchStarted,
        engine_events.BatchFinished,
        engine_events.RetryScheduled,
        engine_events.ItemSkipped,
        engine_events.CancelRequested,
        engine_events.OrderNotFound,
        engine_events.OrderResult,
        engine_events.RunFinished,
        export_service.RunRequestSkipped,
        export_service.FailureEmailOutcome,
        export_service.SettingsApplied,
        notify.NotificationResult,
        delivery.EventQueued,
        delivery.EventDelivered,
        delivery.EventRetried,
        delivery.EventSkipped,
        delivery.EventHeld,
        delivery.DeliveryStateChanged,
        control.ProcessInfo,
        control.RunInProgress,
        control.QueueCounts,
        control.IntakeInfo,
        control.StatusSnapshot,
        control.Answer,
        control.SettingsView,
        control.SaveAnswer,
        RunRecord,
        SkippedOrder,
        RealtimeEventRecord,
    )
}


class WireError(ValueError):
    """JSON that is not one of the control interface's values."""


def encode(value: Any) -> Any:
    """A JSON-ready form of `value`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if name not in _CLASSES:
            raise WireError(f"{name} does not travel over the control socket")
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": name, **fields}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [encode(item) for item in value]
    return value


def decode(value: Any) -> Any:
    """The value `encode` was given (dataclasses rebuilt, datetimes parsed)."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$datetime" in value and len(value) == 1:
        try:
            return datetime.fromisoformat(value["$datetime"])
        except (TypeError, ValueError) as error:
            raise WireError(f"not a datetime: {value['$datetime']!r}") from error
    name = value.get("type")
    if isinstance(name, str) and name in _CLASSES:
        cls = _CLASSES[name]
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {key: decode(item) for key, item in value.items() if key in known}
        try:
            return cls(**kwargs)
        except TypeError as error:
            raise WireError(f"a {name} that does not fit: {error}") from error
    return {key: decode(item) for key, item in value.items()}
