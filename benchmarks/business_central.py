"""Business Central source throughput and peak memory, against the loopback Business Central.

    python benchmarks/business_central.py                       # 10,000 and 50,000 orders
    python benchmarks/business_central.py --orders 50000 --page-size 1000 --latency-ms 20

The fake runs in its own process (its data is not counted), with every order in the export
window and `latency` added to every request (a page, the token, the shipment methods...).
Each measurement runs in a fresh child process, so peak RSS is that of the work alone:
  - first read: the source alone, ledger empty (every document remembered, every shipment
    of the window read);
  - second read: the steady state of a scheduled task (ledger warm, shipments incremental);
  - first export: the engine reading from Business Central and writing the dry-run file;
  - idle RSS: the interpreter with the package imported, doing nothing.
Printed with each: orders/s, peak RSS, requests made, the page size, and the source's own CPU
time (the rest of the wall time is the fake building pages, and the latency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECRET_ENV = "BC_CLIENT_SECRET"
SECRET = "benchmark-secret"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_fake(orders: int, latency_ms: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The fake Business Central in a process of its own; returns it and its settings."""
    fake = subprocess.Popen(
        [
            sys.executable, "-m", "tests.fakes.business_central",
            "--port", str(free_port()), "--orders", str(orders), "--days", "30",
            "--no-activity", "--latency-ms", str(latency_ms), "--client-secret", SECRET,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    settings: dict[str, str] = {}
    assert fake.stdout is not None
    for line in fake.stdout:
        if line.startswith("export "):
            break
        key, sep, value = line.partition(" = ")
        if sep and not line.startswith(("#", "source")):
            settings[key.strip()] = value.strip().strip('"')
    return fake, settings


def write_settings(folder: Path, bc: dict[str, str]) -> Path:
    path = folder / "settings.toml"
    settings = {
        "task": {
            "run_on_schedule": False,
            "run_interval_minutes": 0,
            "batch_size": 500,
            "max_days_to_export": 30,
            "max_items_to_skip": 1000,
            "max_archived_log_files": 5,
        },
        "erp": {"source": "business_central", "business_central": bc},
        "destination": {"app": "file"},
        "file": {"path": "orders.jsonl"},
        "storage": {"state_database": "state.sqlite", "logs_dir": "logs"},
    }
    path.write_bytes(tomli_w.dumps(settings).encode())
    return path


async def child_read(settings_path: Path, page_size: int) -> dict[str, Any]:
    from datetime import datetime

    from order_export_tui.engine.runner import window_start
    from order_export_tui.settings import load_settings
    from order_export_tui.sources.business_central.source import BusinessCentralSource
    from order_export_tui.transport.retry import Retrier, RetryPolicy

    settings = load_settings(settings_path)
    retrier = Retrier(RetryPolicy(3, 60))
    source = BusinessCentralSource.from_settings(settings, retrier, page_size=page_size)
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    started, cpu_started = time.perf_counter(), time.process_time()
    count = 0
    async for chunk in source.iter_orders(start):
        count += len(chunk)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    requests = source.client.requests
    await source.close()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "orders": count,
        "requests": requests,
        "rss_mb": peak_rss_mb(),
    }


async def child_export(settings_path: Path) -> dict[str, Any]:
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
    return {"seconds": seconds, "orders": report.counts["read"], "rss_mb": peak_rss_mb()}


def child_idle() -> dict[str, Any]:
    import order_export_tui.cli  # everything a run imports
    import order_export_tui.sources.business_central.source  # noqa: F401

    return {"seconds": 0.0, "orders": 0, "rss_mb": peak_rss_mb()}


def in_child(*args: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, SECRET_ENV: SECRET},
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(orders: int, page_size: int, latency_ms: float) -> None:
    started = time.perf_counter()
    fake, bc = start_fake(orders, latency_ms)
    built = time.perf_counter() - started
    try:
        with tempfile.TemporaryDirectory(prefix="order-export-bc-bench-") as folder:
            settings = str(write_settings(Path(folder), bc))
            idle = in_child("idle")
            first = in_child("read", settings, str(page_size))
            second = in_child("read", settings, str(page_size))
            for ledger in Path(folder).glob("state.business-central.sqlite*"):
                ledger.unlink()  # the export starts cold, as a first run does
            export = in_child("export", settings)
    finally:
        fake.terminate()
        fake.wait(timeout=10)

    def rate(figures: dict[str, Any]) -> float:
        return float(figures["orders"]) / figures["seconds"]

    print(
        f"\n{orders:,} orders, page size {page_size}, {latency_ms:g} ms latency per request"
        f" (fake built in {built:.1f}s)"
    )
    for name, figures in (("first read ", first), ("second read", second)):
        print(
            f"  {name} {rate(figures):>9,.0f} orders/s  {figures['seconds']:6.2f}s"
            f"  peak RSS {figures['rss_mb']:6.1f} MB  {figures['requests']} requests"
            f"  (source CPU {figures['cpu_seconds']:.2f}s:"
            f" {figures['orders'] / figures['cpu_seconds']:,.0f} orders per CPU second)"
        )
    print(
        f"  first export{rate(export):>9,.0f} orders/s  {export['seconds']:6.2f}s"
        f"  peak RSS {export['rss_mb']:6.1f} MB  (engine + dry-run file destination)"
    )
    print(f"  idle interpreter + package: peak RSS {idle['rss_mb']:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "read":
            figures = asyncio.run(child_read(Path(rest[0]), int(rest[1])))
        elif kind == "export":
            figures = asyncio.run(child_export(Path(rest[0])))
        else:
            figures = child_idle()
        print(json.dumps(figures))
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    for orders in args.orders:
        measure(orders, args.page_size, args.latency_ms)


if __name__ == "__main__":
    main()
