"""Notices: one per fact, and the service's own news said as one line (a scheduled run that
did not start, the failure e-mail's fate, real-time delivery failing and recovering)."""

from __future__ import annotations

import time

from textual.app import App

from order_export_tui.service.delivery import DELIVERY_FAILING, DeliveryStateChanged
from order_export_tui.service.export_service import FailureEmailOutcome, RunRequestSkipped


def say_service_notice(app: App[object], event: object) -> None:
    if isinstance(event, RunRequestSkipped):
        app.notify(f"{event.trigger} run not started: {event.reason}", severity="warning")
    elif isinstance(event, FailureEmailOutcome):
        if event.result.sent:
            app.notify(f"Failure e-mail sent for run {event.run_id}.")
        else:
            app.notify(f"Failure e-mail NOT sent: {event.result.error}", severity="error")
    elif isinstance(event, DeliveryStateChanged):
        if event.state == DELIVERY_FAILING:
            app.notify(
                f"Real-time delivery is failing: {event.error}", severity="error", markup=False
            )
        else:
            app.notify("Real-time delivery works again.")


class NoticesShown:
    """The notices on screen, so that one already shown is not stacked again (a key pressed
    twice, the same error from the service and from its log)."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], float] = {}  # notice -> when its toast goes away

    def again(self, message: str, severity: str, shown_for: float) -> bool:
        """True when this notice is on screen already; else it is noted as shown."""
        now = time.monotonic()
        key = (" ".join(message.split()), severity)
        self._until = {said: until for said, until in self._until.items() if until > now}
        if key in self._until:
            return True
        self._until[key] = now + shown_for
        return False

    def clear(self) -> None:
        self._until.clear()
