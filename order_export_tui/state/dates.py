"""Order dates as the state stores them: UTC to the second, so comparing texts compares
instants."""

from __future__ import annotations

from datetime import UTC, datetime


def order_date_key(order_date: object) -> str | None:
    """An order document's `order_date` as the state stores it: the instant in UTC to the
    second, 'YYYY-MM-DDTHH:MM:SSZ', so that comparing texts compares instants whatever
    offset the ERP wrote. None for what is not an ISO 8601 time with an offset.

    Seconds are cut, never rounded: against a whole-second bound (the window starts at a
    midnight) an order compares as its exact time does."""
    if not isinstance(order_date, str):
        return None
    if (
        len(order_date) == 25
        and order_date[19:] == "+00:00"
        and order_date[10] == "T"
        and order_date[4] == order_date[7] == "-"
        and order_date[13] == order_date[16] == ":"
    ):
        # Already UTC to the second, as most ERPs write it: its key is its first 19
        # characters, once Python reads it as a time (a third of the general path's cost).
        try:
            datetime.fromisoformat(order_date)
        except ValueError:
            return None
        return order_date[:19] + "Z"
    return general_order_date_key(order_date)


def general_order_date_key(order_date: str) -> str | None:
    """`order_date_key` for any offset and precision (its fast path's answer, the slow way)."""
    try:
        moment = datetime.fromisoformat(order_date)
        if moment.tzinfo is None:
            return None
        utc = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    return utc.isoformat(timespec="seconds") + "Z"


def instant_key(moment: datetime) -> str:
    """A time as `order_date_key` stores order dates (a window's first moment, say)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
