"""Waits that an operator's cancel ends at once.

Some waits hold no work of ours: a batch whose import Dotdigital has accepted only waits for
the platform to finish it. Stopping there loses nothing (the batch is recorded nowhere and
sent again, harmlessly, next time), so a cancel need not sit out the wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


class WaitInterrupted(Exception):
    """A wait was given up because the run is being cancelled; nothing of it is recorded."""


async def interruptible(
    waiting: Awaitable[None], interrupt: asyncio.Event | None, what: str
) -> None:
    """Await `waiting`, unless `interrupt` is (or becomes) set first: then `WaitInterrupted`."""
    if interrupt is None:
        await waiting
        return
    if interrupt.is_set():
        _close(waiting)
        raise WaitInterrupted(f"cancelled while {what}")
    sleeper = asyncio.ensure_future(waiting)
    stopper = asyncio.ensure_future(interrupt.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stopper):
            if not task.done():
                task.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)
    if not sleeper.cancelled() and sleeper.exception() is None:
        return
    if interrupt.is_set():
        raise WaitInterrupted(f"cancelled while {what}")
    sleeper.result()  # re-raise what the wait itself failed with


def _close(waiting: Awaitable[None]) -> None:
    close = getattr(waiting, "close", None)
    if close is not None:
        close()  # a coroutine never awaited: no "was never awaited" warning
