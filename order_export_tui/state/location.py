"""Where the state lives: a SQLite file (a path) or a PostgreSQL server (a URL).

No database driver here: this module only reads `storage.state_database` and
`storage.database_password_env`. The URL never carries the password (a URL with one is refused
by `check`); the password comes from the environment variable and is kept out of every string
that is shown (`PostgresLocation.shown`, its `repr`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from order_export_tui.settings import Settings
from order_export_tui.settings.database_url import is_database_url, shown_url


@dataclass(frozen=True, slots=True)
class PostgresLocation:
    """A state database on a PostgreSQL server: its URL (without a password) and the password
    read from the environment (None: the server asks for none)."""

    url: str
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        return shown_url(self.url)

    def __str__(self) -> str:
        return self.shown


StateLocation = Path | PostgresLocation


def state_location(settings: Settings) -> StateLocation:
    """The state database the settings name: a file path, or a PostgreSQL location."""
    value = settings.storage.state_database
    if not is_database_url(value):
        return settings.state_database_path
    env = settings.storage.database_password_env
    password = os.environ.get(env) if env else None
    return PostgresLocation(value.strip(), password or None)


def local_anchor(settings: Settings) -> Path:
    """The file that this machine's own files sit beside (the process lock `<anchor>.lock`,
    Business Central's ledger): the state database's file, or with a PostgreSQL state (shared
    by several machines) the control socket, which stays one per machine."""
    if is_database_url(settings.storage.state_database):
        return settings.control_socket_path
    return settings.state_database_path
