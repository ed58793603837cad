"""The wall clock every layer reads: the engine stamps runs with it, the dashboard shows it."""

from __future__ import annotations

from datetime import datetime


def local_now() -> datetime:
    """Now, in this server's local time zone."""
    return datetime.now().astimezone()
