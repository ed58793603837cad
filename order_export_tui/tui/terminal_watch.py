"""Notices that the operator's terminal is gone (an SSH session dropped) and says so once.

Three signs, any of which counts: SIGHUP; the terminal answering EIO (a hung-up tty); the
parent process changing (the login shell died and we were re-parented). The checks run in a
small daemon thread, not on the event loop, so they still fire if a write to the dead
terminal has blocked the loop. On the first sign the standard streams are pointed away
from the terminal, so nothing blocks or fails writing to the dead terminal any more, `on_lost` is
called on the event loop, and a last-resort timer ends the process if the clean stop has not
finished within `grace_seconds`: a dropped session never leaves a spinning process behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import termios
import threading
from collections.abc import Callable
from types import FrameType

POLL_SECONDS = 1.0
GRACE_SECONDS = 120.0
EXIT_TERMINAL_LOST = 129  # 128 + SIGHUP, as a shell reports a hung-up job


def terminal_alive(fd: int) -> bool:
    """False once the tty behind `fd` has hung up (or `fd` is no terminal any more)."""
    try:
        termios.tcgetattr(fd)
    except (termios.error, OSError):
        return False
    return True


class TerminalWatch:
    def __init__(
        self,
        on_lost: Callable[[str], None],
        *,
        tty_fd: int | None = None,
        poll_seconds: float = POLL_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
    ) -> None:
        self._on_lost = on_lost
        self._poll_seconds = poll_seconds
        self._grace_seconds = grace_seconds
        # A private duplicate: it still names the tty after the standard streams are redirected.
        self._tty_fd = os.dup(tty_fd if tty_fd is not None else sys.__stdin__.fileno())
        self._parent = os.getppid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = threading.Event()
        self._lost = threading.Event()
        self._previous_handler: signal.Handlers | Callable[..., object] | int | None = None
        self.reason: str | None = None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous_handler = signal.signal(signal.SIGHUP, self._on_sighup)
        threading.Thread(target=self._poll, name="terminal-watch", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        if self._previous_handler is not None:
            signal.signal(signal.SIGHUP, self._previous_handler)
            self._previous_handler = None
        if not self.lost:
            os.close(self._tty_fd)

    def check(self) -> str | None:
        """Why the terminal counts as gone, or None while it is there."""
        if not terminal_alive(self._tty_fd):
            return "the terminal hung up"
        if os.getppid() != self._parent:
            return "the parent process (the login shell) ended"
        return None

    def _on_sighup(self, signum: int, frame: FrameType | None) -> None:
        self.declare_lost("SIGHUP: the terminal was closed")

    def _poll(self) -> None:
        while not self._stopped.wait(self._poll_seconds):
            reason = self.check()
            if reason is not None:
                self.declare_lost(reason)
                return

    def declare_lost(self, reason: str) -> None:
        if self._lost.is_set() or self._stopped.is_set():
            return
        self._lost.set()
        self.reason = reason
        _silence_standard_streams()
        timer = threading.Timer(self._grace_seconds, os._exit, args=(EXIT_TERMINAL_LOST,))
        timer.daemon = True
        timer.start()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_lost, reason)


_quiet_input: list[int] = []  # the write end of the pipe that stands in for stdin


def _silence_standard_streams() -> None:
    # Output goes to /dev/null; input becomes a pipe nobody writes to, so the terminal
    # driver's input thread waits quietly instead of spinning on end-of-file.
    read_end, write_end = os.pipe()
    _quiet_input.append(write_end)
    os.dup2(read_end, 0)
    os.close(read_end)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
    finally:
        os.close(null)
