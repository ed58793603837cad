"""Resend and retry of one order by id, against a full run of the same demo ERP.

    python benchmarks/lookup.py                  # 200,000 orders
    python benchmarks/lookup.py --orders 50000

All in one run, on one demo ERP (file destination), each figure beside its baseline:
  - full run: every order of the window read, classified and written (the first run);
  - retry by scan: one skipped order re-tried the way it was before lookups by id (a source
    that cannot look orders up, so the run reads the whole window to find it);
  - retry / resend of one order by id (the service call, median of several);
  - the same two as an operator types them (`order-export retry ID`, `order-export resend ID`:
    a new process, imports and start-up included), beside `order-export --version` (the
    start-up alone).
Target (issue 13): resend and retry of one order under 0.5 s at 200,000 orders.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from order_export_tui.engine.runner import ExportEngine  # noqa: E402
from order_export_tui.service.export_service import ExportService  # noqa: E402
from order_export_tui.service.wiring import build_destination, build_source  # noqa: E402
from order_export_tui.settings import Settings, load_settings  # noqa: E402
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp  # noqa: E402
from order_export_tui.sources.demo.connector import demo_database_path  # noqa: E402
from order_export_tui.state import StateStore  # noqa: E402

REPEATS = 5


def write_settings(folder: Path) -> Path:
    path = folder / "settings.toml"
    settings = {
        "task": {
            "run_on_schedule": False,
            "run_interval_minutes": 0,
            "batch_size": 1000,
            "max_days_to_export": 30,
            "max_items_to_skip": 1000,
            "max_archived_log_files": 5,
        },
        "erp": {"source": "demo", "demo_database": "erp.sqlite"},
        "destination": {"app": "file"},
        "file": {"path": "orders.jsonl"},
        "storage": {"state_database": "state.sqlite", "logs_dir": "logs"},
    }
    path.write_bytes(tomli_w.dumps(settings).encode())
    return path


class ScanOnlySource:
    """The demo source without `get_orders`: what a run limited to chosen ids did before."""

    def __init__(self, inner: DemoErpSource) -> None:
        self._inner = inner
        self.name = inner.name

    async def count_orders(self, window_start: Any) -> int:
        return await self._inner.count_orders(window_start)

    def iter_orders(self, window_start: Any) -> Any:
        return self._inner.iter_orders(window_start)

    async def close(self) -> None:
        await self._inner.close()


def service_for(settings: Settings, state: StateStore, *, scan: bool = False) -> ExportService:
    def source(s: Settings, retrier: Any) -> Any:
        built = build_source(s, retrier)
        return ScanOnlySource(built) if scan else built  # type: ignore[arg-type]

    engine = ExportEngine(
        settings, state, source_factory=source, destination_factory=build_destination
    )

    async def no_email(settings: Settings, report: Any) -> None:
        return None

    return ExportService(settings, engine, notifier=no_email)


async def timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call
    return time.perf_counter() - started, result


def cli_seconds(folder: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "order_export_tui", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"order-export {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return seconds


async def measure(orders: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = load_settings(write_settings(folder))
        started = time.perf_counter()
        generate_demo_erp(
            demo_database_path(settings), orders=orders, seed=13, days=30, malformed=20
        )
        print(f"demo ERP: {orders:,} orders in {time.perf_counter() - started:.1f}s")
        state = StateStore(settings.state_database_path)
        try:
            service = service_for(settings, state)
            full, report = await timed(service.engine.run("benchmark"))
            assert report.outcome == "succeeded", report.error
            skipped = state.skipped_order_ids()
            sent = _some_exported(state)[0]
            assert skipped, "the demo ERP made no malformed orders to skip"

            scan_service = service_for(settings, state, scan=True)
            scan, answer = await timed(scan_service.retry([skipped[0]]))
            assert answer.started and len(answer.orders) == 1

            retries, resends = [], []
            for n in range(REPEATS):
                seconds, answer = await timed(service.retry([skipped[n % len(skipped)]]))
                assert answer.orders and answer.orders[0].status == "refused"
                retries.append(seconds)
                seconds, answer = await timed(service.resend([sent]))
                assert answer.all_confirmed, answer
                resends.append(seconds)
        finally:
            state.close()
        cli_start = cli_seconds(folder, "--version")
        cli_retry = cli_seconds(folder, "retry", skipped[0])
        cli_resend = cli_seconds(folder, "resend", sent)

    retry = statistics.median(retries)
    resend = statistics.median(resends)
    print(f"full run:                {full:8.3f} s  ({report.counts['read']:,} orders)")
    print(f"retry one, by scan:      {scan:8.3f} s  (baseline: before lookups by id)")
    print(f"retry one, by id:        {retry:8.3f} s  ({scan / retry:,.0f}x faster than by scan)")
    print(f"resend one, by id:       {resend:8.3f} s  ({full / resend:,.0f}x less than a full run)")
    print(f"order-export --version:  {cli_start:8.3f} s  (baseline: a new process, imports)")
    print(f"order-export retry ID:   {cli_retry:8.3f} s  (a new process, start-up included)")
    print(f"order-export resend ID:  {cli_resend:8.3f} s  (a new process, start-up included)")
    verdict = "met" if max(retry, resend) < 0.5 else "NOT met"
    print(f"target < 0.5 s for one order (service call): {verdict}")


def _some_exported(state: StateStore) -> list[str]:
    rows = state._db.execute("SELECT order_id FROM exported_order ORDER BY order_id LIMIT 1")
    return [row[0] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus")
    asyncio.run(measure(args.orders))


if __name__ == "__main__":
    main()
