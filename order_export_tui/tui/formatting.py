"""How times, durations and counts read on the dashboard (no Textual here)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path


def clock_time(moment: datetime | None) -> str:
    """Server-local date and time to the minute; "—" when unknown."""
    if moment is None:
        return "—"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def next_run_time(moment: datetime, now: datetime | None) -> str:
    """When the next run starts: to the minute, and within a minute to the second with the
    seconds left ("in 42 s, 10:15:00"), so an operator waiting for it sees it move."""
    if now is not None and (now.tzinfo is None) == (moment.tzinfo is None):
        left = (moment - now).total_seconds()
        if 0 <= left < 60:
            return f"in {math.ceil(left)} s, {moment.astimezone().strftime('%H:%M:%S')}"
    return clock_time(moment)


def stamp(iso_text: str | None) -> str:
    """An ISO 8601 time from the state database, shown server-local to the second."""
    if not iso_text:
        return "—"
    try:
        moment = datetime.fromisoformat(iso_text)
    except ValueError:
        return iso_text
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short_stamp(iso_text: str | None) -> str:
    """`stamp` without the year, for lists that span days: `11-27 09:00:00`."""
    text = stamp(iso_text)
    return text[5:] if len(text) == 19 else text


def duration(seconds: float | None) -> str:
    """`0:07`, `12:05`, `1:02:03`; "—" when unknown."""
    if seconds is None or seconds < 0:
        return "—"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def between(start_iso: str | None, end_iso: str | None) -> float | None:
    """Seconds between two ISO 8601 times, None when either is missing or malformed."""
    if not start_iso or not end_iso:
        return None
    try:
        return (datetime.fromisoformat(end_iso) - datetime.fromisoformat(start_iso)).total_seconds()
    except ValueError:
        return None


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def size(n_bytes: int) -> str:
    """A file size with a binary unit: `512 B`, `4.0 KiB`, `200.0 MiB`."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def relative_to(path: Path | str, folder: Path) -> str:
    """A path as the operator wrote it in the settings: relative to the settings folder when
    it lies inside it (stable in screenshots and shorter on screen)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path)
