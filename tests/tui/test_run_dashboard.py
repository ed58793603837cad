"""`run_dashboard`: the CLI's entry point refuses what it cannot run, and a dropped terminal
(an SSH session gone) stops it cleanly instead of leaving it spinning."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from order_export_tui.settings import SettingsError, destination_identity, load_settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import StateLock, StateStore
from order_export_tui.tui import run_dashboard
from tests.conftest import write_settings

REPO = Path(__file__).resolve().parents[2]


def test_bad_settings_raise_the_loader_s_problems(tmp_path: Path) -> None:
    path = write_settings(tmp_path, {"task": {"batch_size": 0}})
    with pytest.raises(SettingsError) as error:
        run_dashboard(path)
    assert error.value.problems == ["task.batch_size: must be an integer from 1 to 10000 (got 0)"]


def test_a_missing_secret_is_named_and_nothing_starts(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DOTDIGITAL_API_PASSWORD", raising=False)
    path = write_settings(
        tmp_path, {"destination": {"app": "dotdigital"}, "dotdigital": {"api_user": "u"}}
    )
    assert run_dashboard(path) == 2
    assert "DOTDIGITAL_API_PASSWORD is not set" in capsys.readouterr().err


def test_while_another_process_holds_the_state_it_says_which_and_exits_1(tmp_path, capsys) -> None:
    path = write_settings(tmp_path)
    settings = load_settings(path)
    with StateLock(settings.state_database_path, role="daemon"):
        assert run_dashboard(path) == 1
    err = capsys.readouterr().err
    assert f"pid {os.getpid()}, order-export daemon, since" in err
    assert "does not start a second engine" in err


class Terminal:
    """The dashboard in a child process on a pseudo-terminal, as over SSH."""

    def __init__(self, settings_path: Path) -> None:
        code = (
            "import sys; from pathlib import Path; from order_export_tui.tui import run_dashboard;"
            " sys.exit(run_dashboard(Path(sys.argv[1])))"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color"}
        self.pid, self.master = pty.fork()
        if self.pid == 0:  # the child: a session leader whose controlling terminal is the pty
            os.execve(sys.executable, [sys.executable, "-c", code, str(settings_path)], env)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.output += data

    def wait_for(self, text: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline, (
                f"{text!r} never shown: {bytes(self.output[-3000:])!r}"
            )
            time.sleep(0.05)

    def hang_up(self) -> None:
        os.close(self.master)  # what sshd does when the connection drops

    def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"still running {timeout}s after the terminal hung up")


def wait_for_exported(database: Path, at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
                if db.execute("SELECT count(*) FROM exported_order").fetchone()[0] >= at_least:
                    return
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} orders exported after {timeout}s")


def test_a_dropped_terminal_stops_the_run_cleanly_and_ends_the_process(tmp_path: Path) -> None:
    path = write_settings(tmp_path, {"task": {"batch_size": 2}})
    settings = load_settings(path)
    generate_demo_erp(demo_database_path(settings), orders=30_000, seed=5, days=10, malformed=0)
    terminal = Terminal(path)
    terminal.wait_for(b"Batch progress")
    time.sleep(0.3)
    os.write(terminal.master, b"r")
    wait_for_exported(settings.state_database_path, at_least=200)
    terminal.hang_up()
    assert terminal.wait_exit(timeout=30) == 0

    state = StateStore(settings.state_database_path)
    try:
        run = state.recent_runs(1)[0]
        # Stopped at a batch boundary, as `c` would: every answered batch recorded.
        assert run.outcome == "cancelled" and 200 <= run.counts["read"] < 30_000
        exported = state.exported_count(destination=destination_identity(settings).identity)
        assert exported == run.counts["new"] == run.counts["read"]
        log = Path(run.log_file or "").read_text()
        assert "cancel requested: stopping at the next batch boundary" in log
    finally:
        state.close()
    with StateLock(settings.state_database_path, role="test"):
        pass  # released
