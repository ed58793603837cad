"""The dashboard under load: event-loop stalls during a full-speed run, and opening a big log.

    python benchmarks/dashboard.py                    # 100,000 orders, a 200 MB log
    python benchmarks/dashboard.py --orders 20000 --log-mb 50

1. Stall: the dashboard runs headless (`run_test`, 120x40) while a 50 ms asyncio timer
   measures how late it fires; an export of N demo orders to the dry-run file runs through
   the dashboard's `r` key. The worst lateness is the longest the screen and keys froze.
   The same run is measured with the engine alone, for comparison.
2. Log open: a log file of the given size (run-log lines) is opened in the log browser; the
   time from `l` to the first screen of lines on the terminal, and to the full line index.
Targets (issue 8): stall < 100 ms, log open < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from order_export_tui.engine.runner import ExportEngine  # noqa: E402
from order_export_tui.service.export_service import ExportService  # noqa: E402
from order_export_tui.service.hosted import HostedControl  # noqa: E402
from order_export_tui.service.wiring import build_destination, build_source  # noqa: E402
from order_export_tui.settings import Settings, load_settings  # noqa: E402
from order_export_tui.sources.demo import generate_demo_erp  # noqa: E402
from order_export_tui.sources.demo.connector import demo_database_path  # noqa: E402
from order_export_tui.state import StateStore  # noqa: E402
from order_export_tui.tui import OrderExportApp  # noqa: E402
from order_export_tui.tui.logs_screen import LogsScreen  # noqa: E402

TICK = 0.05


def write_settings(folder: Path) -> Settings:
    path = folder / "settings.toml"
    settings = {
        "task": {
            "run_on_schedule": False,
            "run_interval_minutes": 0,
            "batch_size": 100,
            "max_items_to_skip": 1000,
        },
        "erp": {"source": "demo", "demo_database": "erp.sqlite"},
        "destination": {"app": "file"},
        "file": {"path": "orders.jsonl"},
        "storage": {"state_database": "state.sqlite", "logs_dir": "logs"},
    }
    path.write_bytes(tomli_w.dumps(settings).encode())
    return load_settings(path)


class StallMeter:
    """A 50 ms timer on the event loop; records how late each tick fires."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(TICK)
            self.lateness.append(time.perf_counter() - start - TICK)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def summary(self) -> str:
        ordered = sorted(self.lateness)
        p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0
        return (
            f"worst {max(ordered) * 1000:6.1f} ms, p99 {p99 * 1000:5.1f} ms,"
            f" median {statistics.median(ordered) * 1000:4.1f} ms over {len(ordered)} ticks"
        )


def fresh_state(folder: Path, orders: int) -> tuple[Settings, StateStore]:
    folder.mkdir(parents=True, exist_ok=True)
    settings = write_settings(folder)
    generate_demo_erp(demo_database_path(settings), orders=orders, seed=1, days=25, malformed=0)
    return settings, StateStore(settings.state_database_path)


def engine_for(settings: Settings, state: StateStore) -> ExportEngine:
    return ExportEngine(
        settings, state, source_factory=build_source, destination_factory=build_destination
    )


async def measured(work: Callable[[], Awaitable[float]]) -> tuple[float, StallMeter]:
    meter = StallMeter()
    meter.start()
    seconds = await work()
    await meter.stop()
    return seconds, meter


async def engine_alone(folder: Path, orders: int) -> None:
    settings, state = fresh_state(folder, orders)
    engine = engine_for(settings, state)

    async def run() -> float:
        report = await engine.run("manual")
        assert report.counts["new"] == orders, report
        return report.duration_seconds

    seconds, meter = await measured(run)
    state.close()
    print(f"  engine alone:   {orders / seconds:8,.0f} orders/s; stall {meter.summary()}")


async def with_dashboard(folder: Path, orders: int) -> None:
    settings, state = fresh_state(folder, orders)
    engine = engine_for(settings, state)
    app = OrderExportApp(settings, control=hosted(ExportService(settings, engine), state))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()

        async def run() -> float:
            await pilot.press("r")
            report = await app.control.service.wait_for_run()
            assert report is not None and report.counts["new"] == orders, report
            await pilot.pause(0.2)
            return report.duration_seconds

        seconds, meter = await measured(run)
        shown = app.progress.processed
    state.close()
    assert shown == orders, shown
    print(
        f"  with dashboard: {orders / seconds:8,.0f} orders/s; stall {meter.summary()};"
        f" {app.feed.posted} screen updates for {orders // 100:,} batches"
    )


def hosted(service: ExportService, state: StateStore) -> HostedControl:
    return HostedControl(service, state, role="tui", since="")


def shown_text(app: OrderExportApp) -> str:
    """What the terminal shows (the compositor's current lines)."""
    if not isinstance(app.screen, LogsScreen):
        return ""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def write_big_log(path: Path, megabytes: int) -> int:
    line = (
        "2026-11-27T09:00:00.000+00:00 batch {n} done: sent 100; run so far: read={n}00 "
        "new={n}00 updated=0 unchanged=0 retried=0 skipped=0\n"
    )
    written = lines = 0
    with path.open("w") as handle:
        while written < megabytes * 1024 * 1024:
            chunk = "".join(line.format(n=n) for n in range(lines, lines + 10_000))
            handle.write(chunk)
            written += len(chunk)
            lines += 10_000
    return lines


async def log_open(folder: Path, megabytes: int) -> None:
    settings, state = fresh_state(folder, 10)
    logs = settings.logs_dir_path
    logs.mkdir(parents=True, exist_ok=True)
    big = logs / "run-20261127-090000-000001.log"
    lines = write_big_log(big, megabytes)
    size_mb = big.stat().st_size / 1024 / 1024
    app = OrderExportApp(
        settings, control=hosted(ExportService(settings, engine_for(settings, state)), state)
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        meter = StallMeter()
        meter.start()
        start = time.perf_counter()
        # What the `l` key does; `pilot.press` would wait for the app to go idle, which it
        # does only once the whole file is indexed.
        app.action_show_logs()
        # The first screen is up once the terminal shows the file's first line.
        while "batch 0 done" not in shown_text(app):
            await asyncio.sleep(0.005)
        first_screen = time.perf_counter() - start
        screen = app.screen
        while screen.view.scanning:
            await asyncio.sleep(0.005)
        indexed = time.perf_counter() - start
        await meter.stop()
        assert screen.view.index.line_count == lines, (screen.view.index.line_count, lines)
        jump = time.perf_counter()
        await pilot.press("G")
        await pilot.pause()
        to_end = time.perf_counter() - jump
    state.close()
    print(
        f"  {size_mb:.0f} MB, {lines:,} lines: first screen {first_screen * 1000:.0f} ms,"
        f" fully indexed {indexed:.2f} s, jump to the end {to_end * 1000:.0f} ms;"
        f" stall while indexing {meter.summary()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--log-mb", type=int, default=200)
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        print(f"Stall during a run of {args.orders:,} orders (target: worst < 100 ms):")
        asyncio.run(engine_alone(folder / "alone", args.orders))
        asyncio.run(with_dashboard(folder / "dashboard", args.orders))
        print(f"Opening a {args.log_mb} MB log (target: first screen < 1 s):")
        asyncio.run(log_open(folder / "log", args.log_mb))


if __name__ == "__main__":
    main()
