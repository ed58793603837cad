"""The messages the app's background parts send to its screens."""

from __future__ import annotations

from textual.message import Message

from order_export_tui.service.control_client import Disconnected, Reattached
from order_export_tui.service.events import ServiceEvent
from order_export_tui.tui.run_progress import RunProgress


class RunProgressed(Message):
    """The run moved on: at most one of these every ~100 ms, however fast the engine goes."""

    def __init__(self, progress: RunProgress, *, run_changed: bool) -> None:
        super().__init__()
        self.progress = progress
        # A run started, is being cancelled or finished: history and skips need a reload.
        self.run_changed = run_changed


class ServiceNotice(Message):
    """Something the service reports: a skipped run request, the failure e-mail's fate."""

    def __init__(self, event: ServiceEvent) -> None:
        super().__init__()
        self.event = event


class ConnectionChanged(Message):
    """An attached dashboard lost its process (`Disconnected`) or has it again (`Reattached`)."""

    def __init__(self, event: Disconnected | Reattached) -> None:
        super().__init__()
        self.event = event
