"""A small tmpfs in a user and mount namespace of its own: a real full disk for a test."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path


def can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


def fill(folder: Path) -> Path:
    """Write a file in `folder` until its disk has not one byte left; returns that file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    size = 65536
    try:
        while size:
            try:
                os.write(fd, b"x" * size)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                size //= 2
    finally:
        os.close(fd)
    return filler
