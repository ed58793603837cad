"""One way in: the lock, the state database and the assembled service, opened and closed in
one place for `run`, the daemon and the dashboard; the daemon's and the dashboard's serve
their control socket beside the service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from order_export_tui.service.control_server import ControlServer
from order_export_tui.service.export_service import ExportService, assemble_service
from order_export_tui.service.hosted import HostedControl
from order_export_tui.service.leadership import as_leader, leadership, open_state
from order_export_tui.settings import Settings
from order_export_tui.state import (
    StateLock,
    StateLockedError,
    StateStore,
    local_anchor,
)


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
    stack = ExitStack()
    with StateLock(local_anchor(settings), role=role) as lock:
        state = open_state(settings, role)
        intake_state: StateStore | None = None
        try:
            # With a PostgreSQL state: lead first (a daemon waits as a standby until then).
            cluster = stack.enter_context(leadership(settings, role=role, since=lock.since))
            service, intake_state = assemble_service(settings, state, realtime=role != "run")
            control = HostedControl(service, state, role=role, since=lock.since)
            control.cluster_members = cluster
            if cluster is not None:
                as_leader(control, settings)
            if role != "run":
                serve_control_socket(control, settings.control_socket_path)
            yield HostedSession(control, service, state, lock)
        finally:
            if intake_state is not None:
                intake_state.close()
            stack.close()
            state.close()


def serve_control_socket(control: HostedControl, path: Path) -> HostedControl:
    """Serve `control` on the control socket at `path` (0600) whenever it serves, so that
    commands and dashboards can attach to it."""
    control.serve_beside(ControlServer(control, path))
    return control


# The dashboard tells a held state database by this error without importing the state.
__all__ = ["HostedSession", "StateLockedError", "hosted_session", "serve_control_socket"]
