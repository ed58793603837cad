"""Whether the folders the product writes in can be written: checked by `check` and before
`run`, `daemon` and the dashboard start, so that a logs folder on a read-only disk (or under a
file) is named by its key at once instead of failing every run later."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from order_export_tui.settings.connectors import chosen
from order_export_tui.settings.database_url import is_database_url
from order_export_tui.settings.model import Settings, resolve_path


def _folders(settings: Settings) -> list[tuple[str, Path]]:
    """(key, the folder it writes in): the state database's, the control socket's and the
    logs folder itself, and the folder of each file the configured connectors write."""
    folders = [
        ("storage.control_socket", settings.control_socket_path.parent),
        ("storage.logs_dir", settings.logs_dir_path),
    ]
    if not is_database_url(settings.storage.state_database):  # a server's is not a folder here
        folders.insert(0, ("storage.state_database", settings.state_database_path.parent))
    for connector in chosen(settings):
        section = connector.section_of(settings)
        for name in connector.file_keys:
            value = getattr(section, name, "")
            if isinstance(value, str) and value.strip():
                folders.append((connector.key(name), resolve_path(settings, value).parent))
    return folders


def _write_problem(folder: Path) -> str | None:
    """Why nothing can be written in `folder` (made when missing, as a run would), or None.
    A real write, not the permission bits: root passes those, not a read-only disk."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing}: is a file where a folder is needed"
    try:
        handle, name = tempfile.mkstemp(prefix=".order-export-probe-", dir=existing)
    except OSError as error:
        return error.strerror or errno.errorcode.get(error.errno or 0, str(error))
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def unwritable_folders(settings: Settings) -> list[str]:
    """One problem per folder that cannot be written, naming its key."""
    problems = []
    for key, folder in _folders(settings):
        reason = _write_problem(folder)
        if reason is not None:
            problems.append(f"{key}: cannot write to {folder} ({reason})")
    return problems
