"""One value of a view's column read as its meaning (interfaces.md §9): NULL text is "", a
NULL amount 0; a value that cannot be read raises `UnreadableError` naming the column."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from order_export_tui.orders import brief
from order_export_tui.sources.sql.columns import CATEGORY_SEPARATOR


class UnreadableError(ValueError):
    """A value that cannot be read as its column's meaning."""

    def __init__(self, column: str, value: object, meaning: str) -> None:
        self.column = column
        super().__init__(f"{brief(value)} is not {meaning}")


def text(value: Any, column: str) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if kind is int or kind is uuid.UUID:
        return str(value)
    if kind is Decimal and value.is_finite() and value == value.to_integral_value():
        return str(value.to_integral_value())
    raise UnreadableError(column, value, "text")


def amount(value: Any, column: str) -> float:
    kind = type(value)
    if kind is float:
        number = value
    elif kind is int:
        if abs(value) >= 2**53:
            raise UnreadableError(column, value, "an amount below 2**53")
        number = float(value)
    elif kind is Decimal:
        if not value.is_finite():
            raise UnreadableError(column, value, "a finite number")
        number = float(value)
    elif value is None:
        return 0.0
    elif kind is str:
        number = _number_text(value, column)
    else:
        raise UnreadableError(column, value, "a number")
    if not math.isfinite(number):
        raise UnreadableError(column, value, "a finite number")
    return number


def quantity(value: Any, column: str) -> int | float:
    number = amount(value, column)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def line_number(value: Any, column: str) -> int:
    number = amount(value, column) if value is not None else None
    if number is None or not number.is_integer() or abs(number) >= 2**53:
        raise UnreadableError(column, value, "a whole number below 2**53")
    return int(number)


def moment(value: Any, column: str) -> str:
    """The order date as ISO 8601 with an offset ("" for NULL: the order then breaks §3)."""
    kind = type(value)
    if kind is str:
        value = _moment_text(value, column)
        kind = type(value)
    if kind is datetime:
        try:
            if value.tzinfo is None:
                return value.astimezone().isoformat()  # type: ignore[no-any-return]
            return value.astimezone(UTC).isoformat()  # type: ignore[no-any-return]
        except (OverflowError, ValueError, OSError):
            raise UnreadableError(column, value, "a time") from None
    if kind is date:
        return local_midnight(value)
    if value is None:
        return ""
    raise UnreadableError(column, value, "a date or time")


def local_midnight(day: date) -> str:
    try:
        return datetime.combine(day, time.min).astimezone().isoformat()
    except (OverflowError, ValueError, OSError):
        raise UnreadableError("order_date", day, "a date this server can place") from None


def categories(value: Any, column: str) -> list[str]:
    names = text(value, column)
    if not names:
        return []
    return [name.strip() for name in names.split(CATEGORY_SEPARATOR) if name.strip()]


def _number_text(value: str, column: str) -> float:
    try:
        return float(Decimal(value.strip()))
    except (InvalidOperation, ValueError):
        raise UnreadableError(column, value, "a number") from None


def _moment_text(value: str, column: str) -> datetime | date:
    stripped = value.strip()
    try:
        if len(stripped) == 10:
            return date.fromisoformat(stripped)
        return datetime.fromisoformat(stripped)
    except ValueError:
        raise UnreadableError(column, value, "an ISO 8601 date or time") from None
