"""What the operator types into the dashboard's prompts, read and checked (no Textual here)."""

from __future__ import annotations

import re
from datetime import date

_SEPARATORS = re.compile(r"[\s,;]+")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def order_ids(text: str) -> list[str]:
    """Order ids separated by spaces, commas or semicolons; each once, in the order typed."""
    seen: dict[str, None] = {}
    for part in _SEPARATORS.split(text):
        if part:
            seen.setdefault(part, None)
    return list(seen)


def order_ids_problem(text: str) -> str | None:
    return None if order_ids(text) else "type at least one order id"


def backfill_day(text: str, today: date) -> date | str:
    """The day a backfill starts on, or what is wrong with `text` (one line)."""
    text = text.strip()
    if not _DAY.fullmatch(text):
        return "a day as YYYY-MM-DD, e.g. 2026-06-01"
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return f"{text} is not a day of the calendar"
    if day > today:
        return f"{text} is in the future (today is {today.isoformat()})"
    return day
