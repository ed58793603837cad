"""Dotdigital throughput: demo ERP -> engine -> Dotdigital destination -> the loopback fake.

    python benchmarks/dotdigital.py                       # 20,000 orders, 20 ms per request
    python benchmarks/dotdigital.py --orders 5000 --latency-ms 50

The fake (tests/fakes/dotdigital.py) runs in a child process, so its work does not compete
with the engine's; every request it answers waits `--latency-ms` first, as a distant API
would. Two figures, measured in the same run:
  - engine: `ExportEngine` with the demo source and `DotdigitalDestination`, batch_size 100:
    bulk contacts import + bulk Insight import per batch, polled, batches in flight at once
    as far as the engine runs them;
  - baseline: the naive client, one single-record PUT per order, sequential, plain httpx,
    timed over the first `--baseline-orders` orders (after the engine run, so the contacts
    and the collection exist and the baseline pays for no contact creation).
Target (issue 4): the engine at least 50 times the baseline.

Then requests per 10,000 orders (issue 16 item 9), with the fake in this process counting
every request it answers, imports taking `--import-ms` plus `--import-ms-per-record`:
  - paced: the shipped destination: imports polled when their size says they are done
    (learnt from the run's imports), batches in flight sharing one contacts import;
  - baseline, same run: the polling this replaced: a first poll after a learnt wait (25 ms
    before any), then waits doubling up to 2 s, and one contacts import per batch.
At `batch_size` 100 and 1,000. Target: at most 40 requests per 10,000 orders at 1,000.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

USER = "bench-user"
PASSWORD = "bench-password"
PASSWORD_ENV = "BENCH_DOTDIGITAL_PASSWORD"


def start_fake(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    """The fake in a child process on a free port; returns it and its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.dotdigital",
            "--port",
            "0",
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--latency-ms",
            str(latency_ms),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://\S+", line)
    if found is None:
        process.kill()
        raise SystemExit(f"the fake did not start: {line!r}")
    return process, found.group(0)


def write_settings(folder: Path, url: str, batch_size: int) -> Path:
    path = folder / "settings.toml"
    settings: dict[str, Any] = {
        "task": {
            "run_on_schedule": False,
            "run_interval_minutes": 0,
            "batch_size": batch_size,
            "max_days_to_export": 30,
            "max_items_to_skip": 1000,
            "max_archived_log_files": 5,
        },
        "erp": {"source": "demo", "demo_database": "erp.sqlite"},
        "destination": {"app": "dotdigital"},
        "dotdigital": {"base_url": url, "api_user": USER, "password_env": PASSWORD_ENV},
        "storage": {"state_database": "state.sqlite", "logs_dir": "logs"},
    }
    path.write_bytes(tomli_w.dumps(settings).encode())
    return path


async def engine_run(settings_path: Path) -> tuple[float, dict[str, int]]:
    from order_export_tui.engine.runner import ExportEngine
    from order_export_tui.service.wiring import build_destination, build_source
    from order_export_tui.settings import load_settings
    from order_export_tui.state import StateStore

    settings = load_settings(settings_path)
    state = StateStore(settings.state_database_path)
    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=build_destination
    )
    started = time.perf_counter()
    report = await engine.run("benchmark")
    seconds = time.perf_counter() - started
    state.close()
    assert report.outcome == "succeeded", report.error
    return seconds, report.counts


async def first_orders(settings_path: Path, count: int) -> list[dict[str, Any]]:
    from order_export_tui.engine.runner import window_start
    from order_export_tui.settings import load_settings
    from order_export_tui.sources.demo import DemoErpSource

    settings = load_settings(settings_path)
    from order_export_tui.sources.demo.connector import demo_database_path

    source = DemoErpSource(demo_database_path(settings))
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    orders: list[dict[str, Any]] = []
    async for chunk in source.iter_orders(start):
        orders.extend(chunk)
        if len(orders) >= count:
            break
    await source.close()
    return orders[:count]


def baseline_run(url: str, orders: list[dict[str, Any]], store_name: str) -> float:
    """One single-record PUT per order, one after the other: the naive client."""
    from order_export_tui.destinations.dotdigital.records import (
        order_record_json,
        single_record_path,
    )

    started = time.perf_counter()
    with httpx.Client(base_url=url, auth=(USER, PASSWORD), timeout=120) as client:
        for doc in orders:
            response = client.put(
                single_record_path(doc, "Orders"),
                content=orjson.dumps(order_record_json(doc, store_name)),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code in (201, 204), response.text
    return time.perf_counter() - started


class FixedPolling:
    """The import polling before issue 16 item 9, kept here as the benchmark's baseline: the
    first wait learnt from the run's earlier imports (25 ms before any), then doubling to 2 s."""

    def __init__(self) -> None:
        self._first: dict[str, float] = {}

    def first_wait(self, kind: str, records: int) -> float:
        return self._first.get(kind, 0.025)

    def next_wait(self, kind: str, records: int, waited: float) -> float:
        return min(2.0, waited + self.first_wait(kind, records))

    def still_running(self, kind: str, records: int, running_at: float) -> None:
        return

    def learn(self, kind: str, records: int, running_at: float, done_at: float) -> None:
        first = self.first_wait(kind, records)
        self._first[kind] = max(0.01, first * 0.8) if running_at <= 0 else min(2.0, running_at)


async def counted_run(
    url: str, settings_path: Path, *, baseline: bool
) -> tuple[float, dict[str, int]]:
    """One engine run whose Dotdigital destination polls as shipped or as before."""
    from order_export_tui.destinations.dotdigital.destination import DotdigitalDestination
    from order_export_tui.engine.runner import ExportEngine
    from order_export_tui.service.wiring import build_source
    from order_export_tui.settings import Settings, load_settings
    from order_export_tui.state import StateStore

    def destination(settings: Settings) -> DotdigitalDestination:
        made = DotdigitalDestination.from_settings(settings)
        if baseline:
            made._pacer = FixedPolling()  # type: ignore[assignment]
            made.share_contact_imports = False
        return made

    settings = load_settings(settings_path)
    state = StateStore(settings.state_database_path)
    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=destination
    )
    started = time.perf_counter()
    report = await engine.run("benchmark")
    seconds = time.perf_counter() - started
    state.close()
    assert report.outcome == "succeeded", report.error
    return seconds, report.counts


def count_requests(orders: int, latency_ms: float, import_ms: float, per_record_ms: float) -> None:
    """Requests per 10,000 orders, paced against the old polling, at batch_size 100 and 1,000."""
    from order_export_tui.sources.demo import generate_demo_erp
    from tests.fakes.dotdigital import FakeDotdigital, Faults

    os.environ[PASSWORD_ENV] = PASSWORD
    print(
        f"\nrequests per 10,000 orders ({orders:,} demo orders, {latency_ms:g} ms per request,"
        f" an import takes {import_ms:g} ms + {per_record_ms:g} ms per record)"
    )
    print(f"  {'batch_size':>10} {'baseline':>10} {'paced':>10} {'ratio':>7}  (run seconds)")
    with tempfile.TemporaryDirectory(prefix="order-export-dotdigital-requests-") as folder:
        erp = Path(folder) / "erp.sqlite"
        generate_demo_erp(erp, orders=orders, seed=1, days=30, malformed=0)
        for batch_size in (100, 1000):
            figures: dict[bool, tuple[float, float]] = {}
            for baseline in (True, False):
                run_folder = Path(folder) / f"{batch_size}-{baseline}"
                run_folder.mkdir()
                (run_folder / "erp.sqlite").symlink_to(erp)
                fake = FakeDotdigital(
                    USER,
                    PASSWORD,
                    faults=Faults(latency=latency_ms / 1000),
                    import_seconds=import_ms / 1000,
                    import_seconds_per_record=per_record_ms / 1000,
                )
                with fake:
                    path = write_settings(run_folder, fake.url, batch_size)
                    seconds, counts = asyncio.run(counted_run(fake.url, path, baseline=baseline))
                    assert counts["new"] == orders, counts
                    figures[baseline] = (len(fake.requests) * 10_000 / orders, seconds)
            (old, old_s), (new, new_s) = figures[True], figures[False]
            print(
                f"  {batch_size:>10,} {old:>10,.1f} {new:>10,.1f} {old / new:>6.1f}x"
                f"  ({old_s:.1f}s / {new_s:.1f}s)"
            )
    print("  target: at most 40 requests per 10,000 orders at batch_size 1,000")


def measure(orders: int, latency_ms: float, baseline_orders: int, batch_size: int) -> None:
    from order_export_tui.sources.demo import generate_demo_erp

    fake, url = start_fake(latency_ms)
    os.environ[PASSWORD_ENV] = PASSWORD
    try:
        with tempfile.TemporaryDirectory(prefix="order-export-dotdigital-") as folder:
            settings_path = write_settings(Path(folder), url, batch_size)
            generate_demo_erp(
                Path(folder) / "erp.sqlite", orders=orders, seed=1, days=30, malformed=0
            )
            seconds, counts = asyncio.run(engine_run(settings_path))
            sample = asyncio.run(first_orders(settings_path, baseline_orders))
            baseline_seconds = baseline_run(url, sample, "Demo webstore")
    finally:
        fake.terminate()
        fake.wait(timeout=10)

    engine_rate = counts["new"] / seconds
    baseline_rate = len(sample) / baseline_seconds
    print(f"\n{orders:,} demo orders, batch_size {batch_size}, {latency_ms:g} ms per request")
    print(
        f"  engine + Dotdigital destination {engine_rate:>9,.0f} orders/s"
        f"  ({counts['new']:,} sent in {seconds:.1f}s, {counts['retried']} retries)"
    )
    print(
        f"  baseline, one PUT per order     {baseline_rate:>9,.1f} orders/s"
        f"  (timed over the first {len(sample):,} orders, {baseline_seconds:.1f}s)"
    )
    print(f"  ratio {engine_rate / baseline_rate:,.1f}x (target: at least 50x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--baseline-orders", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--count-orders", type=int, default=20_000, help="0: skip the count")
    parser.add_argument("--import-ms", type=float, default=20.0)
    parser.add_argument("--import-ms-per-record", type=float, default=0.05)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    if not args.skip_throughput:
        measure(args.orders, args.latency_ms, args.baseline_orders, args.batch_size)
    if args.count_orders:
        count_requests(
            args.count_orders, args.latency_ms, args.import_ms, args.import_ms_per_record
        )


if __name__ == "__main__":
    main()
