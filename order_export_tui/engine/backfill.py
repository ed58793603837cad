"""The first day of a backfill: one rule for `run --since` and the control socket's runs."""

from __future__ import annotations

import re
from datetime import date

# No webstore has orders from before this day; an earlier one (year 1) cannot even be turned
# into a UTC instant in every time zone.
EARLIEST_BACKFILL_DAY = date(1970, 1, 1)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def backfill_day(text: str, today: date) -> date:
    """The day `text` names (YYYY-MM-DD, from 1970-01-01 through `today`); a ValueError
    that says what is wrong otherwise."""
    day: date | None = None
    if _ISO_DAY.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            day = None
    if day is None:
        raise ValueError(f"not a date as YYYY-MM-DD (got {text[:40]!r})")
    if day > today:
        raise ValueError(f"{text} is in the future")
    if day < EARLIEST_BACKFILL_DAY:
        raise ValueError(f"{text} is before {EARLIEST_BACKFILL_DAY.isoformat()}")
    return day
