"""Engine events in, at most one `RunProgressed` message per interval out.

The engine calls its listeners synchronously from the app's own event loop, up to hundreds of
times a second at full speed. Posting a message per event would flood the message queue and
repaint the screen far more often than anyone can read it; instead the events are folded into
a `RunTracker` and a snapshot is posted at most every `interval` seconds, at once for the
events that change the run's state (started, cancelling, finished).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from order_export_tui.service.events import EngineEvent
from order_export_tui.tui.messages import RunProgressed
from order_export_tui.tui.run_progress import RunProgress, RunTracker

FLUSH_INTERVAL_SECONDS = 0.1


class EngineEventFeed:
    def __init__(
        self,
        post: Callable[[RunProgressed], object],
        tracker: RunTracker,
        *,
        monotonic: Callable[[], float],
        interval: float = FLUSH_INTERVAL_SECONDS,
    ) -> None:
        self._post = post
        self._tracker = tracker
        self._monotonic = monotonic
        self._interval = interval
        self._last_flush = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._run_changed = False
        self.posted = 0  # messages posted so far; the tests check the feed never floods

    @property
    def progress(self) -> RunProgress:
        return self._tracker.snapshot()

    def __call__(self, event: EngineEvent) -> None:
        urgent = self._tracker.handle(event)
        if urgent:
            self._run_changed = True
            self.flush()
            return
        if self._timer is None:
            delay = max(0.0, self._last_flush + self._interval - self._monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._last_flush = self._monotonic()
        run_changed, self._run_changed = self._run_changed, False
        self.posted += 1
        self._post(RunProgressed(self._tracker.snapshot(), run_changed=run_changed))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
