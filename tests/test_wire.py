"""The control socket's codec is derived from `ControlEvent`: every member of the union
travels and comes back equal, through real JSON bytes, and the JSON stays what attached
dashboards of this version read."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args, get_origin, get_type_hints

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_export_tui.service.control import ExportControl, StatusSnapshot
from order_export_tui.service.events import (
    ControlEvent,
    EventSuperseded,
    OrderResult,
    RunFinished,
    RunReport,
)
from order_export_tui.service.wire import CLASSES, WireError, decode, decode_event, encode

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])


def strategy(hint: Any) -> st.SearchStrategy[Any]:
    """Values of `hint`, built from the type hints alone (not from the codec)."""
    if hint is Any:
        return st.none() | st.integers(-(2**53), 2**53) | TEXT
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return st.one_of([strategy(arg) for arg in args])
    if origin is tuple:
        if args and args[-1] is Ellipsis:
            return st.lists(strategy(args[0]), max_size=3).map(tuple)
        return st.tuples(*(strategy(arg) for arg in args))
    if origin is list:
        return st.lists(strategy(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(TEXT, strategy(args[1]), max_size=3)
    if hint is type(None):
        return st.none()
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(-(2**53), 2**53)
    if hint is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if hint is str:
        return TEXT
    if hint is datetime:
        return st.datetimes(timezones=ZONES)
    if dataclasses.is_dataclass(hint):
        hints = get_type_hints(hint)
        fields = {f.name: strategy(hints[f.name]) for f in dataclasses.fields(hint)}
        return st.builds(hint, **fields)
    raise AssertionError(f"no strategy for {hint!r}: teach the test (and the codec) this type")


def through_the_socket(value: Any) -> Any:
    return orjson.loads(orjson.dumps(encode(value)))


@pytest.mark.parametrize("event_class", get_args(ControlEvent), ids=lambda cls: cls.__name__)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_member_of_the_union_travels_and_comes_back_equal(
    event_class: type, data: st.DataObject
) -> None:
    event = data.draw(strategy(event_class))
    line = through_the_socket(event)
    assert line["type"] == event_class.__name__
    assert decode_event(line) == event
    assert decode(line, ControlEvent) == event


def control_answers() -> list[Any]:
    """What the `ExportControl` methods answer with (not `subscribe`'s unsubscriber)."""
    answers = []
    for name, method in sorted(vars(ExportControl).items()):
        if name.startswith("_") or not callable(method) or name == "subscribe":
            continue
        answers.append(get_type_hints(method)["return"])
    return answers


@pytest.mark.parametrize("answer", control_answers(), ids=str)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_answer_of_the_control_interface_travels(answer: Any, data: st.DataObject) -> None:
    value = data.draw(strategy(answer))
    assert decode(through_the_socket(value), answer) == value


def test_the_classes_that_travelled_before_still_travel_under_their_names() -> None:
    before = {
        "RunReport", "RunSettings", "RunStarted", "BatchStarted", "BatchFinished",
        "RetryScheduled", "ItemSkipped", "CancelRequested", "OrderNotFound", "OrderResult",
        "RunFinished", "RunRequestSkipped", "FailureEmailOutcome", "SettingsApplied",
        "NotificationResult", "EventQueued", "EventDelivered", "EventRetried", "EventSkipped",
        "EventHeld", "DeliveryStateChanged", "ProcessInfo", "RunInProgress", "QueueCounts",
        "IntakeInfo", "StatusSnapshot", "Answer", "SettingsView", "SaveAnswer", "RunRecord",
        "SkippedOrder", "RealtimeEventRecord",
    }  # fmt: skip
    assert before <= set(CLASSES)
    assert "EventSuperseded" in CLASSES  # the one the hand-kept list had lost


def test_the_json_on_the_wire_is_what_this_version_reads() -> None:
    started = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    report = RunReport(
        run_id=4,
        trigger="resend",
        outcome="succeeded",
        started_at=started,
        finished_at=started + timedelta(seconds=3),
        counts={"new": 1},
        error=None,
        log_file="logs/run-4.log",
        orders=(OrderResult("SO-1", "sent", "confirmed"),),
    )
    assert through_the_socket(RunFinished(report)) == {
        "type": "RunFinished",
        "report": {
            "type": "RunReport",
            "run_id": 4,
            "trigger": "resend",
            "outcome": "succeeded",
            "started_at": {"$datetime": "2026-11-27T10:00:00+00:00"},
            "finished_at": {"$datetime": "2026-11-27T10:00:03+00:00"},
            "counts": {"new": 1},
            "error": None,
            "log_file": "logs/run-4.log",
            "orders": [
                {"type": "OrderResult", "order_id": "SO-1", "status": "sent", "reason": "confirmed"}
            ],
        },
    }
    assert through_the_socket(EventSuperseded(7, "SO-1")) == {
        "type": "EventSuperseded",
        "event_id": 7,
        "order_id": "SO-1",
    }


def test_what_is_no_event_of_this_version_is_passed_over_and_a_bad_one_refused() -> None:
    assert decode_event({"type": "Hello"}) is None
    assert decode_event({"type": "Heartbeat"}) is None
    assert decode_event({"type": "EventOfANewerDaemon", "x": 1}) is None
    # A newer daemon's extra field is left out; a field of the wrong type is refused.
    assert decode_event({"type": "EventSuperseded", "event_id": 7, "order_id": "SO-1", "new": 1})
    with pytest.raises(WireError):
        decode_event({"type": "EventSuperseded", "event_id": "seven", "order_id": "SO-1"})
    with pytest.raises(WireError):
        decode({"type": "Answer", "ok": True, "message": "x"}, StatusSnapshot)


def test_a_class_outside_the_union_and_the_answers_does_not_travel() -> None:
    @dataclasses.dataclass
    class Stray:
        n: int

    with pytest.raises(WireError, match="Stray does not travel"):
        encode(Stray(1))


def test_every_event_class_of_the_event_modules_travels() -> None:
    from order_export_tui.engine import events as engine_events
    from order_export_tui.service import events as service_events

    internal = {"RunCounts"}  # the engine's running tally; a report carries it as a dict
    defined = {
        value.__name__
        for module in (engine_events, service_events)
        for value in vars(module).values()
        if isinstance(value, type) and dataclasses.is_dataclass(value)
    }
    assert defined - internal <= set(CLASSES)
