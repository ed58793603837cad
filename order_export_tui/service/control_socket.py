"""The control socket's file: a Unix socket that is owner-only from the moment it exists.

uvicorn's own `uds=` option chmods the socket to 0666, so the socket is bound here under a
0o177 umask and handed to the server. A socket left by a crashed process (nobody accepts on
it) is replaced; one that answers belongs to a live process and is left alone. A path longer
than the kernel's limit for socket addresses (107 bytes) is reached through the folder's
descriptor (`/proc/self/fd/N/name`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

MAX_SOCKET_PATH = 107


class ControlSocketError(Exception):
    """The control socket cannot be used; the message names the file and what to do."""


@contextlib.contextmanager
def short_address(path: Path) -> Iterator[str]:
    """An address for `bind` / `connect` that fits the kernel's limit."""
    text = os.fsencode(path)
    if len(text) <= MAX_SOCKET_PATH:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


def is_live(path: Path, timeout: float = 1.0) -> bool:
    """Whether a process accepts connections on the socket at `path`."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        with short_address(path) as address:
            probe.connect(address)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def bind_control_socket(path: Path) -> socket.socket:
    """A listening socket at `path`, mode 0600; a stale one is replaced."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as error:
        reason = error.strerror
        message = f"{path}: cannot use it as the control socket ({reason})"
        raise ControlSocketError(message) from None
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            raise ControlSocketError(
                f"{path}: storage.control_socket names a file that is not a socket;"
                " move it away or choose another path"
            )
        if is_live(path):
            raise ControlSocketError(
                f"{path}: another process answers on this control socket;"
                " stop it or choose another storage.control_socket"
            )
        os.unlink(path)  # left by a process that crashed
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        with short_address(path) as address:
            sock.bind(address)
    except OSError as error:
        sock.close()
        raise ControlSocketError(
            f"{path}: cannot create the control socket ({error.strerror})"
        ) from None
    finally:
        os.umask(old_umask)
    sock.listen(64)
    sock.setblocking(False)
    return sock


def remove_control_socket(path: Path, sock: socket.socket) -> None:
    """Remove the socket file on a clean stop, if it is still ours."""
    # Only the process holding the state database's lock serves this path, so a socket here
    # is ours.
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    with contextlib.suppress(OSError):
        sock.close()
