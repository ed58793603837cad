"""Commands given where another daemon leads (interfaces.md §10): a row in `command_request`
that the leader takes (woken by NOTIFY, with a slow poll besides), carries out and answers in
the same row: first its answer (JSON), then, for a run, the run's report (JSON) when it ends.
A request nobody took within `UNTAKEN_SECONDS` is withdrawn, so a later leader never runs
a command its caller has given up on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from order_export_tui.state.errors import StateUnusableError
from order_export_tui.state.location import PostgresLocation

CHANNEL = "order_export_command"
UNTAKEN_SECONDS = 30.0
POLL_SECONDS = 5.0  # the leader's safety net beside NOTIFY
WAIT_POLL_SECONDS = 0.2  # how often a waiting caller looks at its row


def _connect(location: PostgresLocation) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            location.url, password=location.password, autocommit=True, connect_timeout=10
        )
    except psycopg.Error as error:
        shown = location.shown
        problem = f"{shown}: cannot reach the state database: {error}"
        raise StateUnusableError(shown, problem) from None


def submit(location: PostgresLocation, command: str, body: str) -> int:
    """Put a request for the leader; its id."""
    with _connect(location) as connection, connection.transaction():
        row = connection.execute(
            "INSERT INTO command_request (command, body) VALUES (%s, %s) RETURNING request_id",
            (command, body),
        ).fetchone()
        connection.execute(f"NOTIFY {CHANNEL}")
    assert row is not None
    return int(row[0])


def wait_for(
    location: PostgresLocation,
    request_id: int,
    column: str,
    *,
    timeout: float | None,
    withdraw: bool = False,
    gave_up: Callable[[], bool] = lambda: False,
) -> str | None:
    """The request's `answer` or `report` once the leader wrote it; None after `timeout`
    (withdrawing the request if nobody took it, with `withdraw`) or when `gave_up()`."""
    assert column in ("answer", "report")
    deadline = None if timeout is None else time.monotonic() + timeout
    with _connect(location) as connection:
        while True:
            row = connection.execute(
                f"SELECT {column} FROM command_request WHERE request_id = %s", (request_id,)
            ).fetchone()
            if row is not None and row[0] is not None:
                return str(row[0])
            if gave_up() or (deadline is not None and time.monotonic() > deadline):
                if withdraw:
                    withdrawn = connection.execute(
                        "DELETE FROM command_request WHERE request_id = %s AND taken_at IS NULL",
                        (request_id,),
                    )
                    if withdrawn.rowcount == 0:  # taken meanwhile: its answer is coming
                        deadline = None
                        withdraw = False
                        continue
                return None
            time.sleep(WAIT_POLL_SECONDS)


async def serve_requests(
    location: PostgresLocation, carry_out: Callable[[int, str, str], Awaitable[None]]
) -> None:
    """Take each new request (oldest first) and `carry_out(request_id, command, body)`,
    until cancelled; a lost connection is opened again."""
    while True:
        with contextlib.suppress(psycopg.Error, OSError):
            connection = await psycopg.AsyncConnection.connect(
                location.url,
                password=location.password,
                autocommit=True,
                connect_timeout=10,
                application_name="order-export commands",
            )
            async with connection:
                await connection.execute(f"LISTEN {CHANNEL}")
                while True:
                    for request_id, command, body in await _take(connection):
                        await carry_out(request_id, command, body)
                    with contextlib.suppress(TimeoutError):
                        async for _ in connection.notifies(timeout=POLL_SECONDS, stop_after=1):
                            pass
        await asyncio.sleep(2.0)


async def _take(connection: psycopg.AsyncConnection[Any]) -> list[tuple[int, str, str]]:
    cursor = await connection.execute(
        "UPDATE command_request SET taken_at = now() WHERE taken_at IS NULL"
        f" AND requested_at > now() - interval '{UNTAKEN_SECONDS} seconds'"
        " RETURNING request_id, command, body"
    )
    return sorted((int(i), str(c), str(b)) for i, c, b in await cursor.fetchall())


async def write(location: PostgresLocation, request_id: int, column: str, value: str) -> None:
    """Write the request's `answer` or `report`."""
    assert column in ("answer", "report")
    async with await psycopg.AsyncConnection.connect(
        location.url, password=location.password, autocommit=True, connect_timeout=10
    ) as connection:
        await connection.execute(
            f"UPDATE command_request SET {column} = %s WHERE request_id = %s", (value, request_id)
        )
