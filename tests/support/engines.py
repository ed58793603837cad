"""The export engine as the tests build it: the configured source and destination."""

from __future__ import annotations

from typing import Any

from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import Settings
from order_export_tui.state import StateStore
from tests.support.clock import FakeClock
from tests.support.fault_server import FaultServer
from tests.support.loopback_destination import LoopbackDestination


def make_engine(
    settings: Settings,
    state: StateStore,
    clock: FakeClock | None = None,
    *,
    server: FaultServer | None = None,
) -> ExportEngine:
    """The engine over the settings' source and destination (the loopback destination in
    front of `server` when given), waiting on `clock` when given."""
    timing: dict[str, Any] = {}
    if clock is not None:
        timing = {"monotonic": clock.monotonic, "sleep": clock.sleep}
    return ExportEngine(
        settings,
        state,
        source_factory=build_source,
        destination_factory=(
            build_destination if server is None else lambda s: LoopbackDestination(server.url)
        ),
        **timing,
    )
