"""Engine throughput and peak memory: demo ERP -> engine -> file destination.

    python benchmarks/engine.py                      # 100,000 and 1,000,000 orders
    python benchmarks/engine.py --orders 100000      # one size

Each measurement runs in a fresh child process, so peak RSS is that of the work alone.
Figures printed for each size, with baselines measured in the same run:
  - read only: the demo ERP source alone (the ceiling the engine can reach);
  - first run: every order new, rendered and written to the dry-run file;
  - second run: every order unchanged (the steady state of a scheduled task);
  - idle RSS: the interpreter with the package imported, doing nothing.
Each with its process CPU time beside the wall clock (a loaded machine disturbs CPU less).
`--collector settled default` runs the export under both collector policies, alternating.
Targets (issue 2): >= 20,000 orders/s, peak RSS < 150 MB for 1,000,000 orders, flat in N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def settle(collector: str) -> None:
    """The garbage-collector policy of a child: "settled" as `order-export run` and the
    daemon set it (`order_export_tui.collector`), or CPython's "default"."""
    if collector == "settled":
        from order_export_tui.collector import settle_collector

        settle_collector()


def cpu_seconds() -> float:
    """This process's CPU time, user and system (a loaded machine disturbs it less than the
    wall clock; the source's reading thread included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_settings(folder: Path, batch_size: int) -> Path:
    path = folder / "settings.toml"
    settings = {
        "task": {
            "run_on_schedule": False,
            "run_interval_minutes": 0,
            "batch_size": batch_size,
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


async def child_export(settings_path: Path, collector: str = "settled") -> dict[str, float]:
    from order_export_tui.engine.runner import ExportEngine
    from order_export_tui.service.wiring import build_destination, build_source
    from order_export_tui.settings import load_settings
    from order_export_tui.state import StateStore, state_location

    settings = load_settings(settings_path)
    settle(collector)
    state = StateStore(state_location(settings))
    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=build_destination
    )
    cpu = cpu_seconds()
    started = time.perf_counter()
    report = await engine.run("benchmark")
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    state.close()
    assert report.outcome == "succeeded", report.error
    return {
        "seconds": seconds,
        "cpu": cpu,
        "orders": report.counts["read"],
        "rss_mb": peak_rss_mb(),
    }


async def child_read(settings_path: Path, collector: str = "settled") -> dict[str, float]:
    from order_export_tui.engine.runner import window_start
    from order_export_tui.settings import load_settings
    from order_export_tui.sources.demo import DemoErpSource

    settings = load_settings(settings_path)
    from order_export_tui.sources.demo.connector import demo_database_path

    settle(collector)
    source = DemoErpSource(demo_database_path(settings))
    start = window_start(time_now(), settings.task.max_days_to_export)
    cpu = cpu_seconds()
    started = time.perf_counter()
    count = 0
    async for chunk in source.iter_orders(start):
        count += len(chunk)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    await source.close()
    return {"seconds": seconds, "cpu": cpu, "orders": count, "rss_mb": peak_rss_mb()}


def time_now():  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.now().astimezone()


def child_idle() -> dict[str, float]:
    import order_export_tui.cli  # noqa: F401  (everything a run imports)

    return {"seconds": 0.0, "orders": 0, "rss_mb": peak_rss_mb()}


def child_generate(settings_path: Path, orders: int) -> dict[str, float]:
    from order_export_tui.settings import load_settings
    from order_export_tui.sources.demo import generate_demo_erp

    settings = load_settings(settings_path)
    started = time.perf_counter()
    from order_export_tui.sources.demo.connector import demo_database_path

    generate_demo_erp(demo_database_path(settings), orders=orders, seed=1, days=30, malformed=0)
    return {"seconds": time.perf_counter() - started, "orders": orders, "rss_mb": peak_rss_mb()}


def in_child(*args: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(orders: int, batch_size: int, collectors: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="order-export-bench-") as folder:
        settings = str(write_settings(Path(folder), batch_size))
        generated = in_child("generate", settings, str(orders))
        idle = in_child("idle")
        read = {collector: in_child("read", settings, collector) for collector in collectors}
        # One state and output file per collector policy, each from the same demo ERP; the
        # policies alternate so that a change in the machine's load hits both alike.
        settings_of: dict[str, str] = {}
        for collector in collectors:
            variant = Path(folder) / collector
            variant.mkdir()
            (variant / "erp.sqlite").symlink_to(Path(folder) / "erp.sqlite")
            settings_of[collector] = str(write_settings(variant, batch_size))
        runs: dict[str, dict[str, dict[str, float]]] = {collector: {} for collector in collectors}
        for kind in ("first", "second"):
            for collector in collectors:
                runs[collector][kind] = in_child("export", settings_of[collector], collector)
        size_mb = (Path(folder) / collectors[0] / "orders.jsonl").stat().st_size / 1e6

    def rate(figures: dict[str, float]) -> float:
        return figures["orders"] / figures["seconds"]

    print(
        f"\n{orders:,} orders, batch_size {batch_size}"
        f" (demo ERP built in {generated['seconds']:.1f}s)"
    )
    for collector in collectors:
        first, second = runs[collector]["first"], runs[collector]["second"]
        baseline = read[collector]
        print(f"  collector: {collector}")
        print(
            f"  read only (baseline) {rate(baseline):>10,.0f} orders/s"
            f"  peak RSS {baseline['rss_mb']:6.1f} MB  CPU {baseline['cpu']:.2f}s"
        )
        print(
            f"  first run, all new   {rate(first):>10,.0f} orders/s"
            f"  peak RSS {first['rss_mb']:6.1f} MB"
            f"  ({rate(first) / rate(baseline):.2f}x read only; {size_mb:,.0f} MB written)"
            f"  CPU {first['cpu']:.2f}s ({baseline['cpu'] / first['cpu']:.2f}x the read's)"
        )
        print(
            f"  second run, unchanged{rate(second):>10,.0f} orders/s"
            f"  peak RSS {second['rss_mb']:6.1f} MB"
            f"  ({rate(second) / rate(baseline):.2f}x read only)"
            f"  CPU {second['cpu']:.2f}s ({baseline['cpu'] / second['cpu']:.2f}x the read's)"
        )
    print(f"  idle interpreter + package: peak RSS {idle['rss_mb']:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--collector",
        nargs="+",
        choices=["settled", "default"],
        default=["settled"],
        help="garbage-collector policy of the export runs: settled (as the commands set it,"
        " `order_export_tui.collector`) and/or default (CPython's); several alternate",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "export":
            figures = asyncio.run(child_export(Path(rest[0]), *rest[1:]))
        elif kind == "read":
            figures = asyncio.run(child_read(Path(rest[0]), *rest[1:]))
        elif kind == "generate":
            figures = child_generate(Path(rest[0]), int(rest[1]))
        else:
            figures = child_idle()
        print(json.dumps(figures))
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    for orders in args.orders:
        measure(orders, args.batch_size, args.collector)


if __name__ == "__main__":
    main()
