"""The backfill gate: real-time sends to a Mailchimp store wait while this process backfills it.

A backfill marks the store `is_syncing`, which silences its automation e-mails; a real-time
order sent meanwhile would lose its notification. So, per store and event loop, a backfill
marks the store only once no real-time send is in flight, and a real-time send waits for the
backfill's end, up to `hold_seconds`: then it is given back (`HeldForBackfillError`, a
transient error: the real-time queue tries it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

from order_export_tui.transport.retry import TransientError

HOLD_SECONDS = 30.0  # how long a real-time send waits for a backfill before it is re-queued


class HeldForBackfillError(TransientError):
    """A real-time send waits: the store is syncing a backfill, which would silence it."""


class StoreGate:
    """One store's backfill and real-time sends in this process and event loop: a backfill
    marks the store `is_syncing` only once no real-time send is in flight, and real-time
    sends wait for the backfill's end."""

    def __init__(self) -> None:
        self.backfilling = False
        self.ended = asyncio.Event()
        self.ended.set()
        self.realtime = 0
        self.quiet = asyncio.Event()
        self.quiet.set()

    async def start_backfill(self) -> None:
        """Real-time sends wait from now on, and those in flight finish first (each bounded)."""
        self.backfilling = True
        self.ended.clear()
        await self.quiet.wait()

    def end_backfill(self) -> None:
        self.backfilling = False
        self.ended.set()

    @contextlib.asynccontextmanager
    async def realtime_send(self, hold_seconds: float, store_id: str) -> AsyncIterator[None]:
        """Held while a backfill runs (`HeldForBackfillError` after `hold_seconds`), then
        counted in flight until it is done."""
        if self.backfilling:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ended.wait(), hold_seconds)
            if self.backfilling:
                raise HeldForBackfillError(
                    f"store {store_id!r} is syncing a backfill (is_syncing would silence"
                    " this order's notifications); it is sent once the backfill ends"
                )
        self.realtime += 1
        self.quiet.clear()
        try:
            yield
        finally:
            self.realtime -= 1
            if self.realtime == 0:
                self.quiet.set()


# Per event loop, (base URL, store id) -> its gate. A flag on a store with a live backfill
# here is not one left behind by a killed process.
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], StoreGate]] = (
    weakref.WeakKeyDictionary()
)


def store_gate(base_url: str, store_id: str) -> StoreGate:
    per_loop = _GATES.setdefault(asyncio.get_running_loop(), {})
    key = (base_url, store_id)
    if key not in per_loop:
        per_loop[key] = StoreGate()
    return per_loop[key]
