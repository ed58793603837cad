"""New real-time events on a PostgreSQL state, as they are committed by any daemon's intake:
a trigger NOTIFYs on every insert into `realtime_event` (`pg_schema`), and the leader's
delivery worker LISTENs here (psycopg's async API, in the service's event loop). Its own slow
poll stays the safety net for a notification lost with a connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import psycopg

from order_export_tui.state.location import PostgresLocation

CHANNEL = "order_export_realtime"
RECONNECT_SECONDS = 2.0


async def follow_new_events(location: PostgresLocation, on_event: Callable[[], None]) -> None:
    """Call `on_event` for each batch of events committed, until cancelled; a lost
    connection is opened again (and `on_event` called once, for what arrived meanwhile)."""
    while True:
        with contextlib.suppress(psycopg.Error, OSError):
            connection = await psycopg.AsyncConnection.connect(
                location.url,
                password=location.password,
                autocommit=True,
                connect_timeout=10,
                application_name="order-export delivery",
            )
            async with connection:
                await connection.execute(f"LISTEN {CHANNEL}")
                on_event()
                async for _ in connection.notifies():
                    on_event()
        await asyncio.sleep(RECONNECT_SECONDS)
