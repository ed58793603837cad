"""A real `order-export daemon` subprocess for a test, and commands run beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.cli import REPO, order_export
from tests.support.ports import free_port

__all__ = ["REPO", "DaemonProcess", "free_port", "order_export", "start_command"]


def start_command(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`order-export ARGS` running in the background, output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "order_export_tui", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class DaemonProcess:
    """`order-export daemon` in `folder` (its settings.toml), logging to a file."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.log_path = folder / f"daemon-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "order_export_tui", "daemon"],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output
            if condition(text):
                return text
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited ({self.process.returncode}):\n{text}")
            time.sleep(0.05)
        raise AssertionError(f"timed out; daemon said:\n{self.output}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_started(self) -> DaemonProcess:
        self.wait_for(lambda text: "control socket at" in text)
        return self

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self._log.close()
