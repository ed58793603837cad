"""The leader's run progress, heard on other machines (interfaces.md §10): the leader
NOTIFYs each event of its runs (JSON, as the control socket carries it) on one channel, and
whoever follows a run there (a forwarded command, a standby's dashboard) LISTENs. NOTIFY
costs no table and no polling; what a listener misses (it listened late, or a payload was
too long) is progress only: the run's report and history stay in the shared state."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg

from order_export_tui.state.errors import StateUnusableError
from order_export_tui.state.location import PostgresLocation

CHANNEL = "order_export_run_event"
MAX_PAYLOAD = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
QUEUED_AT_MOST = 2000  # events waiting for the database beyond this are dropped


class RunEventPublisher:
    """The leader's side: `publish(text)` from the event loop never blocks; `serve()` sends
    what was published, in order, opening its connection again when it is lost."""

    def __init__(self, location: PostgresLocation) -> None:
        self._location = location
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    def publish(self, text: str, *, progress: bool = False) -> None:
        """Queue one event; `progress` (a batch's) is dropped while the database lags."""
        if len(text.encode()) >= MAX_PAYLOAD:
            return
        if progress and self._queue.qsize() >= QUEUED_AT_MOST:
            return
        self._queue.put_nowait(text)

    async def serve(self) -> None:
        while True:
            with contextlib.suppress(psycopg.Error, OSError):
                async with await psycopg.AsyncConnection.connect(
                    self._location.url,
                    password=self._location.password,
                    autocommit=True,
                    connect_timeout=10,
                    application_name="order-export run events",
                ) as connection:
                    while True:
                        texts = [await self._queue.get()]
                        while not self._queue.empty():
                            texts.append(self._queue.get_nowait())
                        async with connection.pipeline():  # in order, one round trip
                            for text in texts:
                                await connection.execute(
                                    "SELECT pg_notify(%s, %s)", (CHANNEL, text)
                                )
            await asyncio.sleep(2.0)


class RunEventListener:
    """A caller's side (blocking): LISTEN first, then `take()` what arrived since."""

    def __init__(self, location: PostgresLocation) -> None:
        try:
            self._connection: psycopg.Connection[Any] = psycopg.connect(
                location.url, password=location.password, autocommit=True, connect_timeout=10
            )
        except psycopg.Error as error:
            shown = location.shown
            problem = f"{shown}: cannot reach the state database: {error}"
            raise StateUnusableError(shown, problem) from None
        self._connection.execute(f"LISTEN {CHANNEL}")

    def take(self, wait: float = 0.0) -> list[str]:
        """The payloads that arrived (waiting up to `wait` seconds for the first). Each
        `notifies()` is consumed whole: it holds the connection's lock while it is open."""
        payloads: list[str] = []
        with contextlib.suppress(psycopg.Error):
            payloads += [n.payload for n in self._connection.notifies(timeout=wait, stop_after=1)]
            if payloads:  # then what is already there, without waiting again
                payloads += [n.payload for n in self._connection.notifies(timeout=0.0)]
        return payloads

    def close(self) -> None:
        self._connection.close()
