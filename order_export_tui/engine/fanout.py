"""One way to hand an event to every listener, with one error policy.

A listener that raises must not keep the event from the others, nor flood the log: its first
failure is logged once, as one line naming the listener (the traceback at debug level), and
its later failures at debug level only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

E = TypeVar("E")

log = logging.getLogger("order_export.events")


def listener_name(listener: Callable[..., object]) -> str:
    """`Class.method` for a bound method, the function's qualified name, else its repr."""
    owner = getattr(listener, "__self__", None)
    name = getattr(listener, "__name__", None)
    if owner is not None and name is not None and not isinstance(owner, type):
        return f"{type(owner).__qualname__}.{name}"
    return getattr(listener, "__qualname__", None) or repr(listener)


class Listeners(Generic[E]):
    """The subscribers of one event stream, called in the order they subscribed."""

    def __init__(self, stream: str) -> None:
        self._stream = stream  # named in the log line: "engine", "service", ...
        self._listeners: list[Callable[[E], object]] = []
        self._failed: set[int] = set()  # id() of the listeners whose failure was logged

    def __len__(self) -> int:
        return len(self._listeners)

    def subscribe(self, listener: Callable[[E], object]) -> Callable[[], None]:
        """Add `listener`; returns the function that removes it again (twice is harmless)."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)
            if listener not in self._listeners:
                self._failed.discard(id(listener))

        return unsubscribe

    def emit(self, event: E) -> None:
        """Call every listener with `event`; one that raises is logged and the rest go on."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as error:
                self._failed_once(listener, event, error)

    def _failed_once(self, listener: Callable[[E], object], event: E, error: Exception) -> None:
        name = listener_name(listener)
        what = f"{self._stream} listener {name} failed on {type(event).__name__}"
        key = id(listener)
        if key in self._failed:
            log.debug("%s: %s: %s", what, type(error).__name__, error, exc_info=True)
            return
        self._failed.add(key)
        log.error(
            "%s: %s: %s (its further failures are logged at debug level)",
            what,
            type(error).__name__,
            error,
        )
        log.debug("the first failure of %s", name, exc_info=error)
