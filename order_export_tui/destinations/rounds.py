"""Requests from many batches that join one import: a round gathers what arrives while the
previous round runs, then goes as one.

Dotdigital's contacts import takes thousands of contacts at once; batches in flight together
each wanting a few hundred new contacts need not each pay for an import and its polls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


class _Round(Generic[K, V, R]):
    def __init__(self) -> None:
        self.items: dict[K, V] = {}
        self.task: asyncio.Future[R] | None = None


class Rounds(Generic[K, V, R]):
    """Up to `at_once` rounds run at a time; items asked for meanwhile gather in the next one."""

    def __init__(self, at_once: int = 1) -> None:
        self._gathering: _Round[K, V, R] | None = None
        self._running = asyncio.Semaphore(at_once)
        self._tasks: set[asyncio.Future[R]] = set()

    async def join(self, items: Mapping[K, V], run: Callable[[dict[K, V]], Awaitable[R]]) -> R:
        """Add `items` to the round that has not started yet (a new one if none) and wait for
        that round's result. `run` does the round's work; the first to join supplies it."""
        round_ = self._gathering
        if round_ is None:
            round_ = self._gathering = _Round()
            round_.task = asyncio.ensure_future(self._start(round_, run))
            self._tasks.add(round_.task)
            round_.task.add_done_callback(self._finished)
        round_.items.update(items)
        assert round_.task is not None
        # Shielded: one batch given up on must not cancel the round the others wait for.
        return await asyncio.shield(round_.task)

    async def _start(self, round_: _Round[K, V, R], run: Callable[[dict[K, V]], Awaitable[R]]) -> R:
        async with self._running:
            if self._gathering is round_:
                self._gathering = None  # closed: whoever comes now gathers the next round
            return await run(round_.items)

    def _finished(self, task: asyncio.Future[R]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # seen: its waiters may all have been cancelled

    async def close(self) -> None:
        """Stop what still runs (its batches were abandoned)."""
        self._gathering = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
