"""A broken control connection is told in plain words, never in the HTTP library's (issue 25
item 10: "peer closed connection without sending complete message body (incomplete chunked
read)" on the dashboard)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from order_export_tui.service.control import Disconnected
from order_export_tui.service.control_client import AttachedControl

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def reason_when(socket_path: Path, answer: bytes) -> str:
    """Follow the events of a socket that says Hello, sends `answer` and hangs up."""

    async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunk(b'{"type": "Hello"}\n') + answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(serve, path=str(socket_path))
    control = AttachedControl(socket_path, reconnect_seconds=30)
    reasons: list[str] = []
    control.subscribe(
        lambda event: isinstance(event, Disconnected) and reasons.append(event.reason)
    )
    following = asyncio.ensure_future(control.serve())
    try:
        async with asyncio.timeout(20):
            while not reasons:
                await asyncio.sleep(0.01)
    finally:
        await control.stop()
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        server.close()
        await server.wait_closed()
    return reasons[0]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b'40\r\n{"type": ', "the connection to the process broke off"),  # a cut chunk
        (chunk(b"not json\n"), "the process sent what this dashboard cannot read"),
    ],
)
async def test_a_broken_stream_is_named_in_plain_words(
    tmp_path: Path, answer: bytes, reason: str
) -> None:
    said = await reason_when(tmp_path / "control.sock", answer)
    assert said.startswith(reason)
    for internal in ("peer closed", "chunked", "httpx", "Error", "JSONDecode"):
        assert internal not in said
