"""The run history: each run's trigger, times, outcome and counts, and the run requests that
were not honoured."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from order_export_tui.state.backend import StateConnection

RUNNING = "running"
INTERRUPTED_ERROR = (
    "interrupted: the process stopped (or could not record the end of the run) before the run"
    " finished"
)
# A run's counts, in the order of their columns.
COUNT_NAMES = ("read", "new", "updated", "unchanged", "retried", "skipped", "cancelled")


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run as the `run` table holds it; `counts` by `COUNT_NAMES`."""

    run_id: int
    trigger: str
    started_at: str
    finished_at: str | None
    outcome: str
    counts: dict[str, int]
    error: str | None
    log_file: str | None


class Runs:
    """The `run` and `skipped_tick` tables."""

    def __init__(self, db: StateConnection) -> None:
        self._db = db

    def start_run(self, *, trigger: str, started_at: datetime) -> int:
        with self._db.transaction() as db:
            rows = db.execute(
                "INSERT INTO run (trigger, started_at, outcome) VALUES (?, ?, ?) RETURNING run_id",
                (trigger, started_at.isoformat(), RUNNING),
            ).fetchall()
        return int(rows[0][0])

    def set_run_log_file(self, run_id: int, log_file: str) -> None:
        with self._db.transaction() as db:
            db.execute("UPDATE run SET log_file = ? WHERE run_id = ?", (log_file, run_id))

    def finish_run(
        self,
        run_id: int,
        *,
        finished_at: datetime,
        outcome: str,
        counts: dict[str, int],
        error: str | None,
    ) -> None:
        with self._db.transaction() as db:
            db.execute(
                "UPDATE run SET finished_at = ?, outcome = ?, read = ?, new = ?, updated = ?,"
                " unchanged = ?, retried = ?, skipped = ?, cancelled = ?, error = ?"
                " WHERE run_id = ?",
                (
                    finished_at.isoformat(),
                    outcome,
                    *(counts.get(name, 0) for name in COUNT_NAMES),
                    error,
                    run_id,
                ),
            )

    def close_interrupted_runs(self, now: datetime) -> int:
        """Mark runs a dead process left 'running' as failed. Call while holding the lock."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE run SET outcome = 'failed', finished_at = ?, error = ? WHERE outcome = ?",
                (now.isoformat(), INTERRUPTED_ERROR, RUNNING),
            )
        return cursor.rowcount

    def last_finished_run(self) -> RunRow | None:
        runs = self.recent_runs(1, finished=True)
        return runs[0] if runs else None

    def last_success_at(self) -> str | None:
        """When the newest successful run finished (ISO 8601), None before any."""
        row = self._db.execute(
            "SELECT finished_at FROM run WHERE outcome = 'succeeded' ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    def recent_runs(self, limit: int = 50, *, finished: bool = False) -> list[RunRow]:
        """The newest runs first; `finished`: leave out a run still in progress."""
        where = f" WHERE outcome != '{RUNNING}'" if finished else ""
        rows = self._db.execute(
            "SELECT run_id, trigger, started_at, finished_at, outcome, read, new, updated,"
            f" unchanged, retried, skipped, cancelled, error, log_file FROM run{where}"
            " ORDER BY run_id DESC LIMIT ?",
            (limit,),
        )
        return [
            RunRow(
                run_id=row[0],
                trigger=row[1],
                started_at=row[2],
                finished_at=row[3],
                outcome=row[4],
                counts=dict(zip(COUNT_NAMES, row[5:12], strict=True)),
                error=row[12],
                log_file=row[13],
            )
            for row in rows
        ]

    # --- run requests that were not honoured -----------------------------------------

    def record_skipped_tick(self, *, at: datetime, trigger: str, reason: str) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO skipped_tick (at, trigger, reason) VALUES (?, ?, ?)",
                (at.isoformat(), trigger, reason),
            )

    def skipped_ticks(self, limit: int = 50) -> list[tuple[str, str, str]]:
        """(at, trigger, reason) of the newest run requests that were skipped."""
        rows = self._db.execute(
            "SELECT at, trigger, reason FROM skipped_tick ORDER BY rowid DESC LIMIT ?", (limit,)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]
