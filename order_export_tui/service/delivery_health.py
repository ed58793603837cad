"""Whether real-time delivery works: the errors events wait on, the destination's own error,
since when delivery fails, and the news when that changes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from order_export_tui.service.events import (
    DELIVERY_FAILING,
    DELIVERY_OK,
    DeliveryStateChanged,
    RealtimeActivity,
)

log = logging.getLogger("order_export.delivery")


class DeliveryHealth:
    def __init__(
        self, emit: Callable[[RealtimeActivity], None], clock: Callable[[], datetime]
    ) -> None:
        self._emit = emit
        self._clock = clock
        self.last_error: str | None = None  # for the log and the tests; never on /healthz
        # Events waiting on an error (event id, or -1 for the queue itself -> the error), and
        # the destination's own error.
        self._failing: dict[int, str] = {}
        self._destination_error: str | None = None
        self._failing_since: datetime | None = None

    @property
    def state(self) -> str:
        return DELIVERY_FAILING if self._failing or self._destination_error else DELIVERY_OK

    def health(self) -> dict[str, object]:
        """What `/healthz` shows of delivery: states and counts, never the error text."""
        failing = self.state == DELIVERY_FAILING
        return {
            "state": self.state,
            "since": None
            if not failing or self._failing_since is None
            else self._failing_since.isoformat(timespec="seconds"),
            "waiting_on_error": len(self._failing),
        }

    def note_failure(self, key: int, error: str) -> None:
        was = self.state
        self._failing[key] = error
        self.last_error = error
        self._changed(was)

    def clear_failure(self, key: int) -> None:
        if key not in self._failing:
            return
        was = self.state
        del self._failing[key]
        self._changed(was)

    def set_destination_error(self, error: str | None) -> None:
        was = self.state
        self._destination_error = error
        if error is not None:
            self.last_error = error
        self._changed(was)

    def _changed(self, was: str) -> None:
        now = self.state
        if now == was:
            return
        if now == DELIVERY_FAILING:
            self._failing_since = self._clock()
            log.error("real-time delivery is failing: %s", self.last_error)
            self._emit(DeliveryStateChanged(DELIVERY_FAILING, self.last_error))
        else:
            self._failing_since = None
            log.info("real-time delivery works again")
            self._emit(DeliveryStateChanged(DELIVERY_OK, None))
