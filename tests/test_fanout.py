"""One fan-out, one error policy: a listener that raises is named once in the log, and the
others still get every event."""

from __future__ import annotations

import logging

import pytest

from order_export_tui.engine.fanout import Listeners


class Dashboard:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def broken(self, event: int) -> None:
        raise RuntimeError(f"cannot show {event}")

    def show(self, event: int) -> None:
        self.seen.append(event)


def test_a_listener_that_raises_is_logged_once_by_name_and_the_others_get_every_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listeners: Listeners[int] = Listeners("service")
    dashboard = Dashboard()
    after: list[int] = []
    listeners.subscribe(dashboard.broken)
    listeners.subscribe(dashboard.show)
    listeners.subscribe(after.append)

    with caplog.at_level(logging.INFO, logger="order_export.events"):
        for event in range(5):
            listeners.emit(event)

    assert dashboard.seen == after == [0, 1, 2, 3, 4]
    loud = [record for record in caplog.records if record.levelno >= logging.INFO]
    assert len(loud) == 1
    (line,) = loud
    assert line.levelno == logging.ERROR
    assert "service listener Dashboard.broken failed on int" in line.getMessage()
    assert "RuntimeError: cannot show 0" in line.getMessage()
    assert line.exc_info is None  # one line, no traceback
    assert "\n" not in caplog.text.strip()


def test_the_traceback_of_the_first_failure_is_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listeners: Listeners[int] = Listeners("engine")
    listeners.subscribe(Dashboard().broken)
    with caplog.at_level(logging.DEBUG, logger="order_export.events"):
        listeners.emit(1)
        listeners.emit(2)
    debug = [record for record in caplog.records if record.levelno == logging.DEBUG]
    assert debug and debug[0].exc_info is not None
    assert sum(record.levelno == logging.ERROR for record in caplog.records) == 1


def test_each_failing_listener_is_named_once_and_unsubscribing_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listeners: Listeners[int] = Listeners("control")
    first, second = Dashboard(), Dashboard()
    listeners.subscribe(first.broken)
    unsubscribe = listeners.subscribe(second.show)
    listeners.subscribe(lambda event: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="order_export.events"):
        listeners.emit(1)
        unsubscribe()
        unsubscribe()  # twice is harmless
        listeners.emit(2)
    assert second.seen == [1]
    assert len(listeners) == 2
    named = [record.getMessage() for record in caplog.records]
    assert len(named) == 2
    assert "Dashboard.broken" in named[0] and "<lambda>" in named[1]
