"""One log file per run, named so they sort by time, and their retention."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

from order_export_tui.engine.events import (
    BatchFinished,
    BatchStarted,
    CancelRequested,
    EngineEvent,
    ItemSkipped,
    OrderNotFound,
    RetryScheduled,
    RunFinished,
    RunStarted,
)
from order_export_tui.logsafe import escape_for_log
from order_export_tui.private_files import make_private_dirs, open_private

LOG_NAME = re.compile(r"^run-\d{8}-\d{6}-\d{6,}\.log$")


def log_file_name(started_at: datetime, run_id: int) -> str:
    return f"run-{started_at:%Y%m%d-%H%M%S}-{run_id:06d}.log"


def run_log_files(logs_dir: Path) -> list[Path]:
    """The run log files in `logs_dir`, newest first; other files are not ours to touch."""
    if not logs_dir.is_dir():
        return []
    files = [path for path in logs_dir.iterdir() if LOG_NAME.match(path.name)]
    return sorted(files, key=lambda path: path.name, reverse=True)


def prune_run_logs(logs_dir: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` run log files; returns what was removed."""
    removed = []
    for path in run_log_files(logs_dir)[keep:]:
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


class RunLog:
    """Writes one run's events to its log file, line by line, flushed as they come."""

    def __init__(self, path: Path, clock: Callable[[], datetime]) -> None:
        make_private_dirs(path.parent)
        self.path = path
        self._clock = clock
        # Owner-only: a run log names customers (skipped orders, platform answers).
        fd = open_private(path, os.O_WRONLY | os.O_APPEND)
        self._file: IO[str] = open(fd, "a", encoding="utf-8")  # noqa: SIM115
        self._problems: list[str] = []

    def write(self, message: str) -> None:
        stamp = self._clock().isoformat(timespec="milliseconds")
        self._file.write(f"{stamp} {escape_for_log(message)}\n")
        self._file.flush()

    def handle(self, event: EngineEvent) -> None:
        match event:
            case RunStarted():
                self.write(f"run {event.run_id} started ({event.trigger})")
                for key, value in event.settings.log_items():
                    self.write(f"  setting {key} = {value}")
                self.write(f"window: orders dated on or after {event.window_start.isoformat()}")
                total = "unknown" if event.total is None else str(event.total)
                self.write(f"orders in window: {total}")
            case BatchStarted():
                self.write(f"batch {event.batch_no}: {event.size} orders")
            case BatchFinished():
                counts = " ".join(f"{k}={v}" for k, v in event.counts.items())
                self.write(f"batch {event.batch_no} done: sent {event.sent}; run so far: {counts}")
            case RetryScheduled():
                self.write(
                    f"retry {event.retry} of {event.what} in {event.delay_seconds:.2f}s"
                    f" after: {event.error}"
                )
            case ItemSkipped():
                self._problems.append(f"{event.order_id}: {event.reason}")
                self.write(f"skipped {event.order_id}: {event.reason}")
            case OrderNotFound():
                self.write(f"not found {event.order_id}: {event.reason}")
            case CancelRequested():
                self.write("cancel requested: stopping at the next batch boundary")
            case RunFinished():
                self._write_summary(event)

    def _write_summary(self, event: RunFinished) -> None:
        report = event.report
        counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
        self.write(f"run {report.run_id} {report.outcome} in {report.duration_seconds:.1f}s")
        self.write(f"counts: {counts}")
        if report.error:
            self.write(f"error: {report.error}")
        for order in report.orders:
            self.write(f"order {order.order_id}: {order.status}: {order.reason}")
        if self._problems:
            self.write(f"skipped orders ({len(self._problems)}):")
            for problem in self._problems:
                self.write(f"  {problem}")

    def close(self) -> None:
        self._file.close()
