"""Files and folders that hold customer data, created owner-only whatever the umask.

The state database (and its lock, -wal and -shm), the run logs and the dry-run exports hold
names, e-mail and postal addresses: files are created 0600 and the folders the product
creates for them 0700. Folders that already exist are left as the operator made them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and any missing parents, each 0700; existing ones stay as they are."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    if not current.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file where a folder is needed", str(current))
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            if not path.is_dir():
                raise
            continue  # another process made it meanwhile
        os.chmod(path, PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask


def open_private(path: Path, flags: int) -> int:
    """`os.open(path, flags | O_CREAT)`; a file it creates is 0600 whatever the umask."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return os.open(path, flags)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 when it does not exist yet (before another library opens it)."""
    os.close(open_private(path, os.O_RDONLY))
