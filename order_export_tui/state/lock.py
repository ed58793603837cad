"""The process lock: one process at a time drives exports for a state database, and says
which one it is."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from order_export_tui.private_files import make_private_dirs, open_private
from order_export_tui.state.errors import path_problem


class StateLockedError(Exception):
    """Another process drives exports for this state database."""

    def __init__(self, path: Path | str, holder: str) -> None:
        self.path = path  # a file, or a PostgreSQL URL as shown
        self.holder = holder
        super().__init__(f"another order-export process ({holder}) is using {path}")


class StateLock:
    """An advisory lock beside the state database; the kernel frees it if the process dies."""

    def __init__(self, database: Path, *, role: str) -> None:
        self.path = database.with_name(database.name + ".lock")
        self.database = database
        self.role = role
        self.since = ""
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            make_private_dirs(self.path.parent)
        except OSError as error:
            raise path_problem(self.path, "lock file", error) from None
        try:
            fd = open_private(self.path, os.O_RDWR)
        except OSError as error:
            raise path_problem(self.path, "lock file", error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
            os.close(fd)
            raise StateLockedError(self.database, describe_holder(holder)) from None
        info = {
            "pid": os.getpid(),
            "role": self.role,
            "since": datetime.now().astimezone().isoformat(timespec="seconds"),
            "argv": " ".join(sys.argv[:3]),
        }
        self.since = info["since"]
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@dataclass(frozen=True, slots=True)
class LockHolder:
    pid: int
    role: str
    since: str


def lock_holder(database: Path) -> LockHolder | None:
    """Who holds the lock of this state database now (`pid`, `role`, `since`), or None. Read
    without locking (a reader must never make a starting daemon fail): the holder's file is
    emptied when it lets go, and a holder that died is known by its pid."""
    path = database.with_name(database.name + ".lock")
    try:
        info = json.loads(path.read_bytes() or b"null")
        pid, role, since = int(info["pid"]), str(info["role"]), str(info["since"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, under another user
    return LockHolder(pid, role, since)


def describe_holder(raw: str) -> str:
    try:
        info = json.loads(raw)
        return f"pid {info['pid']}, order-export {info['role']}, since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that did not say who it is"
