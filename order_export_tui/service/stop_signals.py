"""One stop-signal policy for `run`, the daemon and the dashboard.

The first SIGTERM or SIGINT stops at the next batch boundary: every batch the destination
answered is recorded. The second abandons the batch in flight, which is recorded nowhere and
so is simply sent again next time.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

Stop = Callable[[bool], Awaitable[None]]  # stop(abandon_batch)
Announce = Callable[[str, bool], None]  # announce(signal name, abandon_batch)


class StopSignals:
    def __init__(self, stop: Stop, announce: Announce | None = None) -> None:
        self._stop = stop
        self._announce = announce
        self._received = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def received(self) -> int:
        return self._received

    def install(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        signals: tuple[signal.Signals, ...] = STOP_SIGNALS,
    ) -> None:
        loop = loop or asyncio.get_running_loop()
        for signum in signals:
            loop.add_signal_handler(signum, self.handle, signum)

    def uninstall(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = loop or asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)

    def handle(self, signum: int) -> None:
        self._received += 1
        abandon = self._received > 1
        if self._announce is not None:
            self._announce(signal.Signals(signum).name, abandon)
        self._tasks.append(asyncio.get_running_loop().create_task(self._stop(abandon)))
