"""When to look at a Dotdigital import again: guided by its size and by this run's imports.

An import of N records is first looked at when this run's earlier imports say an import of
that size is done (seconds per record, learnt per kind of import), a little after rather than
before, so one status request is usually all it costs. One still running is looked at again
after as long as it has run so far (the waits double), capped, and never past the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Before this run has seen an import finish: a guess that costs a fast API little waiting.
PRIOR_BASE_SECONDS = 0.03
PRIOR_SECONDS_PER_RECORD = 0.0002
MIN_WAIT_SECONDS = 0.01
MAX_WAIT_SECONDS = 60.0
MARGIN = 1.15  # aim just after the expected end: a second look costs a request
PROBE = 0.8  # done at the first look: try a little sooner next time


@dataclass(slots=True)
class _Pace:
    base: float = PRIOR_BASE_SECONDS
    per_record: float = PRIOR_SECONDS_PER_RECORD

    def expected(self, records: int) -> float:
        return self.base + self.per_record * max(records, 1)


@dataclass(slots=True)
class ImportPacer:
    """Learns, per kind of import, how long an import of a given size takes."""

    _paces: dict[str, _Pace] = field(default_factory=dict)

    def first_wait(self, kind: str, records: int) -> float:
        pace = self._paces.setdefault(kind, _Pace())
        return max(MIN_WAIT_SECONDS, pace.expected(records) * MARGIN)

    def next_wait(self, kind: str, records: int, waited: float) -> float:
        """Still running after `waited` seconds: wait as long again (at least the first wait)."""
        return min(MAX_WAIT_SECONDS, max(waited, self.first_wait(kind, records)))

    def learn(self, kind: str, records: int, running_at: float, done_at: float) -> None:
        """The import was seen running `running_at` seconds in (0: never) and done at
        `done_at`: it took somewhere in between."""
        pace = self._paces.setdefault(kind, _Pace())
        # Done at the first look: it may have been done long before, so next time look sooner.
        took = done_at * PROBE / MARGIN if running_at <= 0.0 else (running_at + done_at) / 2
        # The fixed part is kept small; the rest is spread over the records.
        base = min(pace.base, took / 2)
        pace.base = base
        pace.per_record = max(0.0, took - base) / max(records, 1)
