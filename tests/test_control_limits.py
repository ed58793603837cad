"""The control socket against misbehaving clients: bodies it must not read, clients that hang
up, readers that fall behind. A real daemon, raw bytes on its Unix socket."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

from order_export_tui.service.control_server import CLIENT_QUEUE_LIMIT, MAX_REQUEST_BYTES
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, order_export
from tests.test_attach import shop, socket_path, start_daemon


def _connect(folder: Path) -> socket.socket:
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(30)
    client.connect(str(socket_path(folder)))
    return client


def _answer(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a close with our bytes
    still unread reaches us as a reset once its answer is read)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := client.recv(65536):
            received += chunk
    return received


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _status_ok(folder: Path) -> bool:
    with _connect(folder) as client:
        client.sendall(b"GET /status HTTP/1.1\r\nHost: control\r\nConnection: close\r\n\r\n")
        return _answer(client).startswith(b"HTTP/1.1 200")


def test_a_body_declared_too_large_is_refused_before_it_is_sent(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path, orders=10)
    start_daemon(daemons, folder)
    with _connect(folder) as client:
        client.sendall(
            b"PUT /settings HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\n"
            b"Content-Length: 314572800\r\n\r\n"  # 300 MB announced, none of it sent
        )
        answer = _answer(client)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert f"larger than {MAX_REQUEST_BYTES} bytes".encode() in answer


def test_a_chunked_body_is_cut_off_at_the_limit(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path, orders=10)
    daemon = start_daemon(daemons, folder)
    before = _peak_rss_kb(daemon.pid)
    chunk = b"x" * 65536
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with _connect(folder) as client:
        client.sendall(
            b"PUT /settings HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < 64 * 1024 * 1024:  # 64 MB offered; the server stops taking it
                client.sendall(framed)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _answer(client)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * 1024 * 1024  # it stopped reading soon after 4 MB
    assert _peak_rss_kb(daemon.pid) - before < 32 * 1024
    assert _status_ok(folder)


def test_a_client_that_hangs_up_mid_body_leaves_no_traceback(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path, orders=10)
    daemon = start_daemon(daemons, folder)
    for _ in range(3):
        with _connect(folder) as client:
            client.sendall(
                b"POST /runs HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"trigger": '
            )
    # Requests after the hang-ups are served once the loop has handled them.
    for _ in range(5):
        assert _status_ok(folder)
    output = daemon.output
    assert "ClientDisconnect" not in output
    assert "Traceback" not in output


def _run_over_the_socket(folder: Path) -> None:
    body = b'{"trigger": "manual"}'
    with _connect(folder) as client:
        client.sendall(
            b"POST /runs HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        answer = _answer(client)
    assert answer.startswith(b"HTTP/1.1 200") and b'"ok":true' in answer, answer[:300]


def test_an_event_reader_left_far_behind_sees_its_stream_end(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    # 20,000 malformed orders: a skipped-order event each, more than a reader may fall behind
    # (CLIENT_QUEUE_LIMIT) plus what the socket buffers hold.
    orders = 20_000
    assert orders > CLIENT_QUEUE_LIMIT * 1.5
    write_settings(tmp_path, {"task": {"batch_size": 1000, "max_items_to_skip": orders}})
    made = order_export("demo", "--orders", str(orders), "--malformed", str(orders), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    daemon = start_daemon(daemons, tmp_path)
    with _connect(tmp_path) as slow:
        slow.sendall(b"GET /events HTTP/1.1\r\nHost: control\r\n\r\n")
        received = b""
        while b"Hello" not in received:
            received += slow.recv(65536)
        # The reader stops reading while the run's events pile up.
        _run_over_the_socket(tmp_path)
        daemon.wait_for(lambda text: "run 1 failed" in text or "run 1 succeeded" in text)
        # Now it reads again: its stream must end (it was dropped), not idle on heartbeats.
        deadline = time.monotonic() + 30
        while not received.endswith(b"\r\n0\r\n\r\n"):
            assert time.monotonic() < deadline, received[-300:]
            chunk = slow.recv(65536)
            if not chunk:
                break
            received += chunk
    assert b"ItemSkipped" in received
    assert received.count(b"ItemSkipped") < orders  # it missed events: it was dropped
