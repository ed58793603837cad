"""Small helpers of the generator: weighted picks, UTC texts, numbering, apportioning."""

from __future__ import annotations

import bisect
import random
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

_T = TypeVar("_T")

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


class _Picker:
    """Weighted choice by one random() and a bisect (much cheaper than random.choices)."""

    def __init__(self, weighted: Sequence[tuple[_T, float]]) -> None:
        self.values = [value for value, _ in weighted]
        total = sum(weight for _, weight in weighted)
        running = 0.0
        self.bounds: list[float] = []
        for _, weight in weighted:
            running += weight / total
            self.bounds.append(running)
        self.bounds[-1] = 1.0

    def pick(self, random: Callable[[], float]) -> Any:
        return self.values[bisect.bisect_right(self.bounds, random())]


def _iso_utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _utc_text(moment: datetime) -> str:
    """The stored-text form of `moment`, rounded up to the whole second stored times have."""
    utc = moment.astimezone(UTC)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return utc.isoformat()


def _now_text() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _fill_pattern(pattern: str, rng: random.Random) -> str:
    """'35## ??' -> '3521 KX': # becomes a digit, ? an upper-case letter."""
    chars = []
    for ch in pattern:
        if ch == "#":
            chars.append(str(rng.randrange(10)))
        elif ch == "?":
            chars.append(chr(65 + rng.randrange(26)))
        else:
            chars.append(ch)
    return "".join(chars)


def _numbering(prefix: str, count: int, minimum_digits: int) -> tuple[str, int]:
    """A prefix and first number giving `count` numbers of one width, so that text order
    equals numeric order (SO-100001... for 500 orders, SO-10000001... for a million)."""
    digits = max(minimum_digits, len(str(count)) + 1)
    return prefix, 10 ** (digits - 1) + 1


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder)."""
    weight_sum = sum(weights)
    shares = [total * weight / weight_sum for weight in weights]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts
