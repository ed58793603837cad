"""What the real-time screen and the status cost the process that runs exports, once a
second per attached dashboard, on a state database holding a year of events:

- the screen's `recent_events(500)`;
- the status's event counts by state, read from the trigger-kept tally (`event_counts`),
  against the baseline of counting the events themselves (`GROUP BY status`, as before).

    .venv/bin/python benchmarks/realtime_screen.py [--events 200000] [--rounds 200]

Prints the median and p99 of each in milliseconds and the ratios of the medians; checks that
the tally and the count agree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from order_export_tui.state import (
    DELIVERED,
    HELD,
    ORDER_COMPLETED,
    PAYMENT_STATUS,
    SKIPPED,
    StateStore,
)
from order_export_tui.tui.realtime_table import EVENTS_LIMIT


def fill(state: StateStore, events: int) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for n in range(events):
        at = (start + timedelta(seconds=n)).isoformat()
        kind = ORDER_COMPLETED if n % 3 else PAYMENT_STATUS
        status = DELIVERED if n % 50 else (HELD if n % 100 else SKIPPED)
        rows.append((kind, f"SO-{n:07d}", b"", f"key-{n}", at, status, at))
    with state.transaction() as db:
        db.executemany(
            "INSERT INTO realtime_event (kind, order_id, payload, dedupe_key, received_at,"
            " status, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def timed(call: object, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()  # type: ignore[operator]
        times.append((time.perf_counter() - began) * 1000)
    return times


def describe(name: str, times: list[float]) -> str:
    p99 = statistics.quantiles(times, n=100)[98]
    return f"{name:<34} median {statistics.median(times):7.3f} ms   p99 {p99:7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        state = StateStore(Path(folder) / "state.sqlite")
        fill(state, args.events)
        db = state._db

        def count_events() -> dict[str, int]:
            rows = db.execute("SELECT status, count(*) FROM realtime_event GROUP BY status")
            return dict(rows.fetchall())

        assert state.event_counts() == count_events(), "the tally disagrees with the count"
        baseline = timed(count_events, args.rounds)
        tally = timed(state.event_counts, args.rounds)
        recent = timed(lambda: state.recent_events(EVENTS_LIMIT), args.rounds)
        state.close()
    print(f"{args.events:,} events in the state database, {args.rounds} rounds each")
    print(describe("GROUP BY status (baseline)", baseline))
    print(describe("event_counts() (the tally)", tally))
    print(describe(f"recent_events({EVENTS_LIMIT}) (the screen)", recent))
    middle = statistics.median(baseline)
    print(f"tally / baseline: {statistics.median(tally) / middle:.4f}x")
    print(f"screen / baseline: {statistics.median(recent) / middle:.3f}x")


if __name__ == "__main__":
    main()
