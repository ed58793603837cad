"""Engine events at full speed become a handful of screen updates, never a flood."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from order_export_tui.engine.events import (
    BatchFinished,
    BatchStarted,
    RunFinished,
    RunReport,
    RunSettings,
    RunStarted,
)
from order_export_tui.tui.event_feed import EngineEventFeed
from order_export_tui.tui.messages import RunProgressed
from order_export_tui.tui.run_progress import RunTracker

NOW = datetime(2026, 11, 27, 9, 0).astimezone()


async def test_ten_thousand_batches_in_a_burst_post_at_most_a_few_messages() -> None:
    posted: list[RunProgressed] = []
    feed = EngineEventFeed(posted.append, RunTracker(time.monotonic, 10), monotonic=time.monotonic)
    feed(RunStarted(1, "manual", NOW, NOW, 1_000_000, RunSettings(batch_size=100)))
    assert len(posted) == 1 and posted[0].run_changed  # a new run shows at once
    for batch_no in range(1, 10_001):
        feed(BatchStarted(1, batch_no, 100))
        counts = {"read": batch_no * 100, "new": batch_no * 100}
        feed(BatchFinished(1, batch_no, 100, 100, batch_no * 100, 1_000_000, counts))
    assert len(posted) == 1  # nothing yet: the burst is folded, not queued
    await asyncio.sleep(0.25)
    assert len(posted) == 2
    progress = posted[-1].progress
    assert (progress.processed, progress.batch_no, progress.batches_total) == (
        1_000_000,
        10_000,
        10_000,
    )
    assert not posted[-1].run_changed

    report = RunReport(1, "manual", "succeeded", NOW, NOW, {"read": 1_000_000}, None, "x.log")
    feed(RunFinished(report))
    assert len(posted) == 3 and posted[-1].run_changed
    assert posted[-1].progress.outcome == "succeeded" and not posted[-1].progress.active
    feed.close()


def test_rate_and_eta_come_from_the_run_s_own_clock() -> None:
    now = [100.0]
    tracker = RunTracker(lambda: now[0], 10)
    tracker.handle(RunStarted(1, "manual", NOW, NOW, 1000, RunSettings(batch_size=100)))
    tracker.handle(BatchFinished(1, 3, 100, 100, 300, 1000, {"read": 300}))
    now[0] = 104.0
    progress = tracker.snapshot()
    assert progress.rate(now[0]) == 75.0
    assert progress.eta(now[0]) == 700 / 75.0
    assert progress.fraction == 0.3 and progress.batches_total == 10
