"""The status's Exported figure on a large state database, beside the count it replaced.

    python benchmarks/exported_count.py                 # 200,000 exported orders
    python benchmarks/exported_count.py --rows 50000

One state file, filled the way runs and real-time delivery fill it (a tenth of the rows keep
their ~2 KB order document, as real-time deliveries do), order dates spread over the last 60
days. In the same run, median of many calls each:
  - old: `SELECT COUNT(*) FROM exported_order` on a file of the previous layout (no
    order_date column or index), which is what the status read before;
  - old query, new file: the same COUNT(*) on the new layout (SQLite counts on the index);
  - window count: `exported_count(since)` for a 30-day window (about half the rows) and for a
    window holding every row (the worst case), which every attached dashboard reads each
    second;
  - forget: `forget_unread` after a complete run that read every order of a 30-day window
    (nothing gone), once per run.
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from order_export_tui.engine.runner import window_start  # noqa: E402
from order_export_tui.state import ExportedOrder, StateStore  # noqa: E402

DOCUMENT = orjson.dumps({"order_id": "x", "lines": [{"name": "n" * 60, "sku": "s"}] * 20})


def fill(path: Path, rows: int, now: datetime) -> None:
    state = StateStore(path)
    try:
        for first in range(0, rows, 10_000):
            batch = []
            for n in range(first, min(rows, first + 10_000)):
                dated = now - timedelta(seconds=(n * 7919) % (60 * 86_400))
                document = DOCUMENT if n % 10 == 0 else None
                batch.append(
                    ExportedOrder(
                        f"SO-{n:07d}", f"{n:064x}", "shipped", "paid", document, dated.isoformat()
                    )
                )
            state.record_batch(run_id=1, now=now, exported=batch, skipped={}, resolved=[])
    finally:
        state.close()


def old_layout_copy(path: Path, copy: Path) -> None:
    """The same rows as the previous release's file holds them."""
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as db:
        db.execute("DROP INDEX exported_order_by_date")
        db.execute("ALTER TABLE exported_order DROP COLUMN order_date")
        db.execute("VACUUM")


def median_ms(call: Callable[[], object], repeats: int) -> float:
    call()  # warm the page cache
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.sqlite"
        old_path = Path(folder) / "old-state.sqlite"
        fill(path, args.rows, now)
        old_layout_copy(path, old_path)

        old = sqlite3.connect(old_path)
        old_count = median_ms(
            lambda: old.execute("SELECT COUNT(*) FROM exported_order").fetchone(), args.repeats
        )
        old.close()

        state = StateStore(path)
        window_30 = window_start(now, 30)
        everything = window_start(now, 3650)
        same_file = median_ms(state.exported_count, args.repeats)
        count_30 = median_ms(lambda: state.exported_count(window_30), args.repeats)
        count_all = median_ms(lambda: state.exported_count(everything), args.repeats)
        in_window = state.exported_count(window_30)
        with sqlite3.connect(path) as db:
            read = {
                row[0]
                for row in db.execute(
                    "SELECT order_id FROM exported_order WHERE order_date >= ?",
                    (window_30.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),),
                )
            }
        started = time.perf_counter()
        forgotten = state.forget_unread(since=window_30, started_at=now, read=read)
        forget_ms = (time.perf_counter() - started) * 1000
        state.close()

    print(f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}")
    print(f"{args.rows:,} exported orders, {in_window:,} of them in a 30-day window")
    print(f"old COUNT(*), old file layout       {old_count:8.2f} ms")
    print(f"old COUNT(*), new file layout       {same_file:8.2f} ms")
    print(f"exported_count, 30-day window       {count_30:8.2f} ms  {count_30 / old_count:.2f}x")
    print(f"exported_count, every row in window {count_all:8.2f} ms  {count_all / old_count:.2f}x")
    print(f"forget_unread after a full run      {forget_ms:8.2f} ms  ({forgotten} forgotten)")


if __name__ == "__main__":
    main()
