"""Work that many orders wait for at once: all of a set of requests, or one request per key.

Both keep the failure of one as itself (the engine tells failures apart by their type), and
neither lets a caller that gives up cancel what others still wait for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


async def all_or_first_failure(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Await every one concurrently; on the first failure cancel the rest and raise it as is
    (not as an exception group: the engine tells failures apart by their type)."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class OncePerKey(Generic[K, T]):
    """One request per key for the run, however many orders (or batches) wait for it."""

    def __init__(self) -> None:
        self._futures: dict[K, asyncio.Future[T]] = {}

    def ask(self, key: K, start: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """The key's request, started by the first to ask. A try that failed or was
        cancelled is started again by the next one to ask."""
        future = self._futures.get(key)
        if future is None or (future.done() and (future.cancelled() or future.exception())):
            future = self._futures[key] = asyncio.ensure_future(start())
            future.add_done_callback(_retrieve_exception)
        # Shielded: an order given up on must not cancel what other orders wait for.
        return asyncio.shield(future)

    def forget(self, key: K) -> None:
        """The next one to ask starts the request again."""
        self._futures.pop(key, None)

    def cancel_all(self) -> None:
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    """Mark a shared request's failure as seen: its waiters may all have been cancelled."""
    if not future.cancelled():
        future.exception()
