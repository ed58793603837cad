"""The engine under an eager task factory, as the dashboard's loop has one on Python 3.12+
(Textual sets `asyncio.eager_task_factory`): a batch answered at once is recorded before the
next batch is read, exactly as under the default factory."""

from __future__ import annotations

import asyncio
import sys

import pytest

from order_export_tui.engine.events import BatchFinished, BatchStarted, EngineEvent
from tests.support.demo_erp import demo
from tests.support.engines import make_engine

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="asyncio.eager_task_factory exists from Python 3.12 on"
)


async def test_each_batch_is_recorded_before_the_next_is_read(make_settings, state_factory) -> None:
    settings = make_settings(task={"batch_size": 10})
    demo(settings, orders=60, malformed=0)
    state = state_factory(settings)
    engine = make_engine(settings, state)
    events: list[EngineEvent] = []
    exported_when_started: dict[int, int] = {}

    def note(event: EngineEvent) -> None:
        events.append(event)
        if isinstance(event, BatchStarted):
            exported_when_started[event.batch_no] = state.exported_count()

    engine.subscribe(note)
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    try:
        report = await engine.run()
    finally:
        asyncio.get_running_loop().set_task_factory(None)

    assert report.outcome == "succeeded", report.error
    order = [
        (type(e).__name__, e.batch_no)
        for e in events
        if isinstance(e, BatchStarted | BatchFinished)
    ]
    for batch_no in range(2, report.counts["read"] // 10 + 1):
        assert order.index(("BatchFinished", batch_no - 1)) < order.index(
            ("BatchStarted", batch_no)
        ), order
        assert exported_when_started[batch_no] >= (batch_no - 1) * 10
