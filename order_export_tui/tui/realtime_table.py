"""The recent real-time (webhook) events: when each came, for which order, of which kind, what
became of it (delivered, waiting, held, superseded, skipped, expired) and why."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from order_export_tui.service.records import (
    DELIVERED,
    EXPIRED,
    HELD,
    ORDER_COMPLETED,
    PAYMENT_STATUS,
    QUEUED,
    SKIPPED,
    SUPERSEDED,
    RealtimeEventRecord,
)
from order_export_tui.tui.formatting import short_stamp, stamp
from order_export_tui.tui.list_table import ListTable

EVENTS_LIMIT = 500
WAITING = "waiting"  # how a queued event reads: it waits for (another) delivery attempt

KINDS = {ORDER_COMPLETED: "completed", PAYMENT_STATUS: "payment"}

# state -> (word, symbol, style): a symbol beside the word, so NO_COLOR loses nothing.
STATES: dict[str, tuple[str, str, str]] = {
    DELIVERED: ("delivered", "✓", "green"),
    QUEUED: (WAITING, "…", ""),
    HELD: ("held", "‖", "yellow"),
    SUPERSEDED: ("superseded", "↷", "dim"),
    SKIPPED: ("skipped", "✗", "bold red"),
    EXPIRED: ("expired", "✗", "red"),
}


def state_text(event: RealtimeEventRecord) -> Text:
    word, symbol, style = STATES.get(event.status, (event.status, "", ""))
    return Text(f"{symbol} {word}" if symbol else word, style=style)


def why(event: RealtimeEventRecord) -> str:
    """One line on what became of the event, in the operator's words."""
    error = " ".join((event.last_error or "").split())
    if event.status == QUEUED:
        if not event.attempts:
            return "waiting for delivery"
        tries = "1 attempt" if event.attempts == 1 else f"{event.attempts} attempts"
        return f"{tries} failed, trying again: {error}" if error else f"{tries} failed"
    if event.status == HELD:
        return "order not known yet: applied when it is exported"
    if event.status == SUPERSEDED:
        return "older than the payment status already applied"
    if event.status == EXPIRED:
        return error or "held longer than the export window: the order never arrived"
    if event.status == DELIVERED:
        return "confirmed by the destination"
    return error


def event_detail(event: RealtimeEventRecord) -> str:
    """The event under the cursor in full, for the line below the table (the table cuts the
    reason to its column)."""
    word = STATES.get(event.status, (event.status, "", ""))[0]
    kind = KINDS.get(event.kind, event.kind)
    return f"{event.order_id} {kind}, received {stamp(event.received_at)} · {word}: {why(event)}"


class RealtimeEventsTable(ListTable):
    noun = "event"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._events: dict[str, RealtimeEventRecord] = {}

    @property
    def selected_event(self) -> RealtimeEventRecord | None:
        return self._events.get(self.selected_key or "")

    def on_mount(self) -> None:
        self.border_title = "Real-time events"
        self.add_column("received", key="received", width=14)
        self.add_column("order", key="order", width=12)
        self.add_column("kind", key="kind", width=9)
        self.add_column("state", key="state", width=12)
        self.add_column("why", key="why")

    def load(self, events: Sequence[RealtimeEventRecord]) -> None:
        """The newest event first; the cursor follows the newest unless the operator moved.
        The same events as last time (the usual once-a-second refresh) repaint nothing."""
        events_by_key = {str(event.event_id): event for event in events}
        if events_by_key == self._events and self.row_count:
            return
        self._events = events_by_key
        self.set_rows(
            [
                (
                    str(event.event_id),
                    [
                        short_stamp(event.received_at),
                        event.order_id,
                        KINDS.get(event.kind, event.kind),
                        state_text(event),
                        why(event),
                    ],
                )
                for event in events
            ],
            follow_top=True,
        )
