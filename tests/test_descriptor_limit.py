"""The webhook intake at a low open-file limit: idle connections beyond what the process may
hold are dropped by the connection cap before descriptors run out, the log stays quiet, and
the intake answers again once they are gone. A real daemon, its limit set in the child."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import write_settings
from tests.support.daemon_process import REPO, free_port, order_export

SECRET_ENV = {"ORDER_EXPORT_WEBHOOK_SECRET": "a-webhook-secret-of-32-bytes-ok"}
# The daemon with RLIMIT_NOFILE (soft, hard) from its arguments, set before anything opens.
DAEMON = (
    "import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE,"
    " (int(sys.argv[1]), int(sys.argv[2]))); from order_export_tui.cli import main;"
    " sys.exit(main(['daemon']))"
)


@contextlib.contextmanager
def limited_daemon(folder: Path, soft: int, hard: int) -> Iterator[tuple[int, Path, int]]:
    """(the daemon's pid, its log, the intake's port) while it runs."""
    port = free_port()
    write_settings(folder, {"webhook": {"enabled": True, "listen": f"127.0.0.1:{port}"}})
    assert order_export("demo", "--orders", "10", cwd=folder).returncode == 0
    log_path = folder / "daemon.log"
    with log_path.open("w") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-c", DAEMON, str(soft), str(hard)],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(REPO), **SECRET_ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "webhook intake listening" not in log_path.read_text():
            assert daemon.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        yield daemon.pid, log_path, port
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _healthz(port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code


def test_idle_connections_beyond_the_limit_log_little_and_the_intake_recovers(
    tmp_path: Path,
) -> None:
    with limited_daemon(tmp_path, 512, 512) as (_, log_path, port):
        idle: list[socket.socket] = []
        try:
            for _ in range(800):  # more than the daemon's 512 descriptors
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=30))
            # A newcomer is served while they are held (the cap drops the oldest idle one).
            assert _healthz(port) == 200
        finally:
            for connection in idle:
                connection.close()
        deadline = time.monotonic() + 30
        while _healthz(port) != 200:
            assert time.monotonic() < deadline
        log = log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    # At most a line a second about failed accepts, and here none should be needed at all.
    assert log.count("Too many open files") <= 3, log[-3000:]
    assert len(log.splitlines()) < 20, log[-3000:]


def test_the_soft_open_file_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    with limited_daemon(tmp_path, 256, 2048) as (pid, _, _):
        limits = Path(f"/proc/{pid}/limits").read_text()
    (line,) = (line for line in limits.splitlines() if line.startswith("Max open files"))
    assert line.split()[3:5] == ["2048", "2048"], line
