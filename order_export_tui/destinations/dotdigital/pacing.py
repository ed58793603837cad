"""When to look at a Dotdigital import again: guided by its size and by this run's imports.

An import of N records is first looked at when this run's earlier imports say an import of
that size is done (a fixed part plus a part per record, fitted per kind of import to the
last few imports), a little after rather than before, so one status request is usually all
it costs. One still running is looked at again after as long as it has run so far (the
waits double, up to a cap), and tells the imports of its kind that are waiting meanwhile not
to look sooner than its pace. The deadline is the caller's.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# Before this run has seen an import finish: a guess that costs a fast API little waiting.
PRIOR_BASE_SECONDS = 0.03
PRIOR_SECONDS_PER_RECORD = 0.0004
MIN_WAIT_SECONDS = 0.01
MAX_WAIT_SECONDS = 60.0
MARGIN = 1.25  # aim after the expected end: a second look costs a request
PROBE = 0.8  # done at the first look: it may have been done long before, look sooner next time
SAMPLES = 8


@dataclass(slots=True)
class _Pace:
    samples: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    floor: float = 0.0  # seconds per record: an import still running at this pace

    def expected(self, records: int) -> float:
        records = max(records, 1)
        if self.samples:
            base, per_record = _fit(self.samples)
        else:
            base, per_record = PRIOR_BASE_SECONDS, PRIOR_SECONDS_PER_RECORD
        return max(base + per_record * records, self.floor * records)


def _fit(samples: deque[tuple[int, float]]) -> tuple[float, float]:
    """(seconds, seconds per record) through the samples: least squares once sizes differ;
    for one size, half fixed and half per record (a smaller import then gets some slack)."""
    sizes = [float(records) for records, _ in samples]
    took = [seconds for _, seconds in samples]
    mean_size, mean_took = sum(sizes) / len(sizes), sum(took) / len(took)
    spread = sum((size - mean_size) ** 2 for size in sizes)
    if spread == 0:
        return mean_took / 2, mean_took / (2 * mean_size)
    slope = sum((s - mean_size) * (t - mean_took) for s, t in zip(sizes, took, strict=True))
    per_record = max(0.0, slope / spread)
    base = mean_took - per_record * mean_size
    if base < 0:
        return 0.0, sum(took) / sum(sizes)
    return base, per_record


@dataclass(slots=True)
class ImportPacer:
    """Learns, per kind of import, how long an import of a given size takes."""

    _paces: dict[str, _Pace] = field(default_factory=dict)

    def first_wait(self, kind: str, records: int) -> float:
        pace = self._paces.setdefault(kind, _Pace())
        return min(MAX_WAIT_SECONDS, max(MIN_WAIT_SECONDS, pace.expected(records) * MARGIN))

    def next_wait(self, kind: str, records: int, waited: float) -> float:
        """Still running after `waited` seconds: wait as long again, or until its size says
        it is done if that is later."""
        return min(MAX_WAIT_SECONDS, max(waited, self.first_wait(kind, records) - waited))

    def still_running(self, kind: str, records: int, running_at: float) -> None:
        """An import of `records` was still running `running_at` seconds in."""
        pace = self._paces.setdefault(kind, _Pace())
        pace.floor = max(pace.floor, running_at / max(records, 1))

    def learn(self, kind: str, records: int, running_at: float, done_at: float) -> None:
        """The import was last seen running `running_at` seconds in (0: never) and done at
        `done_at`: it took somewhere in between."""
        pace = self._paces.setdefault(kind, _Pace())
        if running_at <= 0.0:
            took = done_at * PROBE / MARGIN
        else:  # nearer the later end: import times vary, and a miss costs a request
            took = running_at + 0.75 * (done_at - running_at)
        pace.samples.append((max(records, 1), took))
        pace.floor = 0.0
