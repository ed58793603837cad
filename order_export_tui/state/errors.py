"""What goes wrong with the state database, as errors whose message says what to do.

No database driver is named here: the connection translates its driver's errors into these.
"""

from __future__ import annotations

from pathlib import Path


class StateUnusableError(Exception):
    """The state database (or its folder or lock) cannot be used; the message says what to do."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = path  # a file, or a PostgreSQL URL as shown (no user-info)
        super().__init__(message)


class StateDatabaseCorruptError(StateUnusableError):
    """The file is there but is not a readable SQLite database; it is left untouched."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            path,
            f"{path}: the state database is {problem}. It was left untouched. Restore it from a"
            " backup, or move it aside to start with an empty history (every order in the"
            " export window is then sent again).",
        )


class StoragePathError(StateUnusableError):
    """A path of the state database is the wrong kind of file (a folder, say) or unreadable."""


class StateWriteError(Exception):
    """A write to the state database failed (a full disk, an I/O error); nothing of that
    transaction was recorded."""

    def __init__(self, path: Path | str, error: Exception) -> None:
        self.path = path
        reason = str(error)
        hint = " (free some disk space)" if "full" in reason else ""
        super().__init__(f"cannot write the state database {path}: {reason}{hint}")


def path_problem(path: Path, what: str, error: OSError) -> StoragePathError:
    """An OSError from preparing `path` as the message an operator can act on."""
    if isinstance(error, IsADirectoryError):
        detail = f"{path}: the {what} is a folder; remove it or change storage.state_database"
    elif isinstance(error, NotADirectoryError | FileExistsError):
        culprit = Path(error.filename) if error.filename else path
        where = "" if culprit == path else f" (for the {what} {path})"
        detail = (
            f"{culprit}: is a file where a folder is needed{where}; move that file or change"
            " storage.state_database"
        )
    elif isinstance(error, PermissionError):
        detail = f"{path}: no permission to use the {what}; fix its owner or mode"
    else:
        detail = f"{path}: cannot use the {what}: {error.strerror or error}"
    return StoragePathError(path, detail)
