"""What an attached dashboard says about the process it shows: which one, since when, and
whether the connection to it holds."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from order_export_tui.service.control import StatusSnapshot
from order_export_tui.service.control_client import Disconnected, Reattached
from order_export_tui.tui.formatting import clock_time

if TYPE_CHECKING:
    from order_export_tui.tui.app import OrderExportApp


def connection_changed(app: OrderExportApp, event: Disconnected | Reattached) -> None:
    """The daemon went away (the last picture stays, marked) or answers again (everything is
    read afresh)."""
    if isinstance(event, Disconnected):
        app.connection = event.reason
        app.notify(
            f"Disconnected: {event.reason}. Showing the last picture; re-attaching when"
            " the daemon is back.",
            severity="error",
            timeout=10,
        )
    else:
        app.connection = None
        app.notify("Re-attached to the process that runs exports.")
        app.resync_run()
    app.poller.show_status()
    app.refresh_bindings()


def process_text(
    status: StatusSnapshot | None,
    *,
    attached: bool,
    connection: str | None,
    compact: bool = False,
) -> str:
    """Which process an attached dashboard shows; "" when it runs the exports itself.
    `connection`: why the process was lost (None: attached). `compact`: the few words an
    80-column status panel has room for."""
    process = None if status is None else status.process
    if not attached:
        return ""  # this dashboard runs the exports itself
    if process is None:
        return f"not attached: {connection or 'connecting'}"
    if compact:  # under the label "Attached to"
        where = f"{process.role}, pid {process.pid}"
        if connection is not None:
            return f"{where}: DISCONNECTED ({connection})"
        return where
    since = clock_time(datetime.fromisoformat(process.since)) if process.since else "—"
    where = f"order-export {process.role}, pid {process.pid}, since {since}"
    if connection is not None:
        return f"DISCONNECTED from {where}: {connection}; re-attaching"
    return f"attached to {where}"
