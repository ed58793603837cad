"""What can still be used of a settings file that does not validate: its `[storage]` paths,
enough to find the daemon that keeps running on its last good settings (and its state)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from order_export_tui.settings.model import Settings, StorageSettings


def storage_of_broken_file(path: Path) -> Settings:
    """Default settings with the file's `[storage]` strings where it has readable ones: the
    control socket and state database of the daemon it configures. Never raises for the
    file's content; a file that cannot be parsed at all gives the defaults."""
    storage = StorageSettings()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8-sig")).get("storage")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        table = None
    if isinstance(table, dict):
        for name in (field.name for field in dataclasses.fields(StorageSettings)):
            value = table.get(name)
            if isinstance(value, str) and value.strip():
                setattr(storage, name, value)
    return Settings(storage=storage, path=path.resolve())
