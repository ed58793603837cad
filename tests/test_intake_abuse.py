"""Denial of service without the secret (issue 15, item 3), over real sockets: idle and
trickling connections are dropped, the signature is checked before the body is read, body
bytes in flight are capped, and a valid request is still answered while hostile ones are held.
Limits are shrunk so that each case takes a fraction of a second; the figures at the real
limits are in benchmarks/intake_abuse.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
import pytest

from order_export_tui.service.intake import IntakeLimits, signature_for
from tests.support.intake_server import SECRET, Channel, running_channel
from tests.support.orders import order

KIB = 1024
LIMITS = IntakeLimits(
    header_seconds=0.5,
    body_seconds=0.5,
    keep_alive_seconds=1,
    max_connections=20,
    body_bytes_in_flight=3 * 1024 * KIB,
    small_body_bytes=64 * KIB,
    small_body_reserve=256 * KIB,
)
FORGED = "sha256=" + "0" * 64  # well-formed, wrong: the body must be read to know


@pytest.fixture
async def channel(make_settings, loopback) -> AsyncIterator[Channel]:  # type: ignore[no-untyped-def]
    async with running_channel(make_settings, loopback, limits=LIMITS) as running:
        yield running


async def connect(channel: Channel) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", channel.port)


def head(length: int, signature: str | None = FORGED) -> bytes:
    lines = [
        "POST /webhooks/order-completed HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if signature is not None:
        lines.append(f"X-Signature: {signature}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing; fails when it keeps the connection open longer."""
    received = b""
    async with asyncio.timeout(seconds):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                received += chunk
    return received


async def test_an_idle_connection_is_closed_after_the_header_deadline(channel: Channel) -> None:
    reader, writer = await connect(channel)

    assert await closed_within(reader, 3) == b""
    writer.close()


async def test_headers_sent_one_byte_at_a_time_do_not_hold_a_connection(channel: Channel) -> None:
    reader, writer = await connect(channel)

    async def trickle() -> None:
        with contextlib.suppress(OSError):
            for byte in head(100):
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)

    trickling = asyncio.create_task(trickle())
    await closed_within(reader, 3)
    trickling.cancel()
    writer.close()


async def test_a_body_that_trickles_gets_408_and_the_connection_closes(channel: Channel) -> None:
    reader, writer = await connect(channel)
    writer.write(head(10_000))

    async def trickle() -> None:
        with contextlib.suppress(OSError):
            for _ in range(100):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)

    trickling = asyncio.create_task(trickle())
    answer = await closed_within(reader, 3)
    trickling.cancel()
    writer.close()

    assert answer.startswith(b"HTTP/1.1 408")
    assert channel.state.event_counts() == {}


@pytest.mark.parametrize("signature", [None, "sha256=nothex", "md5=abc"])
async def test_a_missing_or_ill_formed_signature_is_refused_before_the_body(
    channel: Channel, signature: str | None
) -> None:
    reader, writer = await connect(channel)
    writer.write(head(900 * KIB, signature))  # ...and not one byte of the body

    answer = await closed_within(reader, 2)
    writer.close()

    assert answer.startswith(b"HTTP/1.1 401")


async def test_body_bytes_in_flight_are_capped_and_small_valid_requests_still_pass(
    channel: Channel,
) -> None:
    held = []
    for _ in range(3):  # 2.7 MiB of unfinished bodies: within the budget for large bodies
        reader, writer = await connect(channel)
        writer.write(head(900 * KIB) + b"{")
        held.append((reader, writer))
    await asyncio.sleep(0.1)
    reader, writer = await connect(channel)
    writer.write(head(900 * KIB) + b"{")

    answer = await closed_within(reader, 2)
    valid = await channel.post("/webhooks/order-completed", order("SO-B1"))

    assert answer.startswith(b"HTTP/1.1 503")
    assert valid.status_code == 202
    for _, held_writer in held:
        held_writer.close()
    writer.close()


async def test_a_valid_request_is_answered_while_the_connection_cap_is_held(
    make_settings, loopback
) -> None:  # type: ignore[no-untyped-def]
    patient = IntakeLimits(header_seconds=30, max_connections=20)
    async with running_channel(make_settings, loopback, limits=patient) as channel:
        idle = [await connect(channel) for _ in range(30)]
        await asyncio.sleep(0.2)

        valid = await channel.post("/webhooks/order-completed", order("SO-C1"))

        assert valid.status_code == 202
        # The oldest idle connections made room; the newest are still held.
        dropped = 0
        for reader, _ in idle:
            with contextlib.suppress(TimeoutError):
                await closed_within(reader, 0.05)
                dropped += 1
        assert 10 <= dropped < 30
        for _, writer in idle:
            writer.close()


async def test_a_signed_request_on_a_kept_alive_connection_still_works(channel: Channel) -> None:
    body = orjson.dumps(order("SO-K1"))
    headers = {"X-Signature": signature_for(SECRET, body)}
    first = await channel.client.post("/webhooks/order-completed", content=body, headers=headers)
    second = await channel.client.get("/healthz")

    assert first.status_code == 202
    assert second.status_code == 200
