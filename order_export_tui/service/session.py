"""One way in: the lock, the state database and the assembled service, opened and closed in
one place for `run`, the daemon and the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from order_export_tui.service.export_service import ExportService, assemble_service
from order_export_tui.service.hosted import HostedControl
from order_export_tui.settings import Settings
from order_export_tui.state import StateLock, StateStore


@dataclass
class HostedSession:
    control: HostedControl
    service: ExportService
    state: StateStore
    lock: StateLock


@contextmanager
def hosted_session(settings: Settings, *, role: str) -> Iterator[HostedSession]:
    """Take the state database's lock (`StateLockedError` names its holder), open the state,
    assemble the service and close all of it again. `role` is "run", "daemon" or "tui";
    `run` gets no real-time intake (interfaces.md §1)."""
    with StateLock(settings.state_database_path, role=role) as lock:
        state = StateStore(settings.state_database_path)
        intake_state: StateStore | None = None
        try:
            service, intake_state = assemble_service(settings, state, realtime=role != "run")
            control = HostedControl(
                service,
                state,
                role=role,
                since=lock.since,
                control_socket=None if role == "run" else settings.control_socket_path,
            )
            yield HostedSession(control, service, state, lock)
        finally:
            if intake_state is not None:
                intake_state.close()
            state.close()
