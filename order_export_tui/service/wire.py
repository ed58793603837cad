"""The control interface's plain data as JSON, both ways.

A dataclass travels as `{"type": "<ClassName>", <fields>}`, a datetime as
`{"$datetime": "<ISO 8601>"}`, a tuple as a list; everything else is JSON already.

What travels is derived, not listed: every member of `ControlEvent` (the event stream), every
result of an `ExportControl` method, and the dataclasses their fields hold. Decoding is led
by the type expected (a field's type hint, a method's result, the event union), so an
attached client never constructs anything the daemon did not mean, and tuples, nested
dataclasses and datetimes come back as what they were.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import types
from datetime import datetime
from typing import Any, Union, get_args, get_origin, get_type_hints

from order_export_tui.service.control import ExportControl
from order_export_tui.service.events import ControlEvent

_NONE = type(None)


class WireError(ValueError):
    """JSON that is not one of the control interface's values."""


def _dataclasses_in(hint: Any, found: dict[str, type]) -> None:
    """Add every dataclass `hint` names (in unions, containers, fields) to `found`."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if found.get(hint.__name__) is hint:
            return
        if hint.__name__ in found:
            raise TypeError(f"two classes named {hint.__name__} would travel")
        found[hint.__name__] = hint
        for field_hint in _field_hints(hint).values():
            _dataclasses_in(field_hint, found)
        return
    for arg in get_args(hint):
        if isinstance(arg, list):  # Callable[[...], ...]'s parameters
            for item in arg:
                _dataclasses_in(item, found)
        else:
            _dataclasses_in(arg, found)


def _control_results() -> list[Any]:
    results = []
    for _, method in inspect.getmembers(ExportControl, inspect.isfunction):
        hints = get_type_hints(method)
        if "return" in hints:
            results.append(hints["return"])
    return results


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls)}


def _travelling() -> dict[str, type]:
    found: dict[str, type] = {}
    for hint in [*get_args(ControlEvent), *_control_results()]:
        _dataclasses_in(hint, found)
    return found


# Class name (the "type" tag) -> class, for everything that crosses the control socket.
CLASSES: dict[str, type] = _travelling()


def encode(value: Any) -> Any:
    """A JSON-ready form of `value`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if CLASSES.get(name) is not type(value):
            raise WireError(f"{name} does not travel over the control socket")
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": name, **fields}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, enum.Enum):
        return encode(value.value)
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [encode(item) for item in value]
    return value


def decode(value: Any, as_type: Any) -> Any:
    """The value of type `as_type` that `encode` made `value` of."""
    if as_type is Any or as_type is object:
        return _plain(value)
    origin = get_origin(as_type)
    if origin is Union or origin is types.UnionType:
        return _decode_union(value, get_args(as_type))
    if origin in (list, tuple, set, frozenset):
        return _decode_sequence(value, origin, get_args(as_type))
    if origin is dict:
        if not isinstance(value, dict):
            raise WireError(f"not an object: {value!r}")
        _, item_type = get_args(as_type) or (str, Any)
        return {str(key): decode(item, item_type) for key, item in value.items()}
    if as_type is _NONE or as_type is None:
        if value is not None:
            raise WireError(f"not null: {value!r}")
        return None
    if as_type is datetime:
        return _decode_datetime(value)
    if isinstance(as_type, type) and dataclasses.is_dataclass(as_type):
        return _decode_dataclass(value, as_type)
    if isinstance(as_type, type) and issubclass(as_type, enum.Enum):
        try:
            return as_type(value)
        except ValueError as error:
            raise WireError(str(error)) from error
    return _decode_scalar(value, as_type)


def decode_event(value: Any) -> ControlEvent | None:
    """The event of one line of the event stream; None for a line that is no event this
    version knows (the stream's hello and heartbeats, an event of a newer daemon)."""
    if not isinstance(value, dict):
        raise WireError(f"not an event: {value!r}")
    if value.get("type") not in _EVENT_NAMES:
        return None
    return decode(value, ControlEvent)  # type: ignore[no-any-return]


_EVENT_NAMES = frozenset(cls.__name__ for cls in get_args(ControlEvent))


def _decode_union(value: Any, members: tuple[Any, ...]) -> Any:
    if value is None and _NONE in members:
        return None
    others = [member for member in members if member is not _NONE]
    if len(others) == 1:
        return decode(value, others[0])
    tag = value.get("type") if isinstance(value, dict) else None
    for member in others:
        if isinstance(member, type) and dataclasses.is_dataclass(member):
            if member.__name__ == tag:
                return _decode_dataclass(value, member)
        else:
            try:
                return decode(value, member)
            except WireError:
                continue
    raise WireError(f"none of {', '.join(map(_name, others))}: {_short(value)}")


def _decode_sequence(value: Any, origin: type, args: tuple[Any, ...]) -> Any:
    if not isinstance(value, list):
        raise WireError(f"not a list: {_short(value)}")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise WireError(f"not {len(args)} items: {_short(value)}")
        return tuple(decode(item, hint) for item, hint in zip(value, args, strict=True))
    item_type = args[0] if args else Any
    return origin(decode(item, item_type) for item in value)


def _decode_datetime(value: Any) -> datetime:
    if not (isinstance(value, dict) and len(value) == 1 and "$datetime" in value):
        raise WireError(f"not a datetime: {_short(value)}")
    try:
        return datetime.fromisoformat(value["$datetime"])
    except (TypeError, ValueError) as error:
        raise WireError(f"not a datetime: {value['$datetime']!r}") from error


def _decode_dataclass(value: Any, cls: type) -> Any:
    name = cls.__name__
    if CLASSES.get(name) is not cls:
        raise WireError(f"{name} does not travel over the control socket")
    if not isinstance(value, dict) or value.get("type") != name:
        raise WireError(f"not a {name}: {_short(value)}")
    hints = _field_hints(cls)
    # Keys this version does not know are left out: a newer daemon may send more.
    kwargs = {key: decode(item, hints[key]) for key, item in value.items() if key in hints}
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise WireError(f"a {name} that does not fit: {error}") from error


def _decode_scalar(value: Any, as_type: Any) -> Any:
    if as_type is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if as_type is int and isinstance(value, bool):
        raise WireError(f"not an int: {value!r}")
    if isinstance(as_type, type) and isinstance(value, as_type):
        return value
    raise WireError(f"not {_name(as_type)}: {_short(value)}")


def _plain(value: Any) -> Any:
    """JSON as it is, datetimes parsed; no class is built where the type says nothing."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$datetime" in value:
            return _decode_datetime(value)
        return {key: _plain(item) for key, item in value.items()}
    return value


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
