"""Probe: the demo ERP read in a child process, the engine fed from a pipe (issue 25 item 19).

    python benchmarks/engine_reader_probe.py --orders 100000 --rounds 3

Not product code: a measurement for a design decision. The engine and the read share one
GIL in today's process, so a run's rate is at most read / (read + engine). Here the demo
source's `iter_orders` runs in a child process, which sends each chunk as orjson bytes over
a pipe (frames of 100 orders, each a 4-byte length then the JSON; `[]` ends a chunk); the
engine's process loads each chunk in a worker thread and feeds the real `ExportEngine`
through a thin source (`PipedDemoSource`). The engine's code is unchanged.

Each round, every measurement in a fresh process (as `benchmarks/engine.py` does):
  - read only, in process: the demo source alone (engine.py's baseline);
  - read only, piped: the same documents through the child-process reader, loaded and
    dropped by the parent;
  - a first run (all new) and an unchanged rerun, in process and piped. The two crossed:
    the piped rerun runs on the state the in-process first run wrote and the other way
    round, and each rerun must find every order unchanged (the piped documents hash the
    same as the ones read in process).
Printed: rates, ratios to both read-only rates, process CPU of the engine's process and of
the reader child, peak RSS of each (the reader's from RUSAGE_CHILDREN) and their sum.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import platform
import resource
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import in_child, write_settings  # noqa: E402  (benchmarks/engine.py)

FRAME = struct.Struct(">I")
FRAME_ORDERS = 100
END_OF_CHUNK = b"[]"
F_SETPIPE_SZ = 1031  # Linux: a pipe of 1 MB lets the reader run ahead of the engine


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the reader child ------------------------------------------------------------------------


async def reader_main(database: Path, window_start: str) -> None:
    """The child: the count, then each chunk of the window, then an empty frame. It imports
    the demo source alone (its peak RSS counts towards the product's)."""
    from order_export_tui.sources.demo.reader import DemoErpSource

    out = sys.stdout.buffer
    with contextlib.suppress(OSError):
        fcntl.fcntl(out.fileno(), F_SETPIPE_SZ, 1 << 20)
    source = DemoErpSource(database)
    start = datetime.fromisoformat(window_start)

    def send(payload: bytes) -> None:
        out.write(FRAME.pack(len(payload)))
        out.write(payload)
        out.flush()

    send(orjson.dumps(await source.count_orders(start)))
    async for chunk in source.iter_orders(start):
        # Frames of a batch each: one big `bytes` a chunk grew both processes' heaps by
        # ~20 MB over a run (glibc's mmap threshold rises, the sizes vary, the heap
        # fragments); the parent joins a chunk's frames again.
        for first in range(0, len(chunk), FRAME_ORDERS):
            send(orjson.dumps(chunk[first : first + FRAME_ORDERS]))
        send(END_OF_CHUNK)
    send(b"")
    await source.close()


# --- the engine's side -----------------------------------------------------------------------


class PipedDemoSource:
    """An `OrderSource` for a window run: the demo ERP read by a child process."""

    name = "demo"

    def __init__(self, database: Path) -> None:
        self.database = database
        self._child: subprocess.Popen[bytes] | None = None
        self._buffer = bytearray(1 << 20)  # each frame read into it: no big bytes a frame

    def _start(self, window_start: datetime) -> BinaryIO:
        self._child = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--reader",
                str(self.database),
                window_start.isoformat(),
            ],
            stdout=subprocess.PIPE,
        )
        assert self._child.stdout is not None
        return self._child.stdout

    def _frame(self) -> memoryview:
        assert self._child is not None and self._child.stdout is not None
        pipe = self._child.stdout
        (size,) = FRAME.unpack(pipe.read(FRAME.size))
        if size > len(self._buffer):
            self._buffer = bytearray(size)
        view = memoryview(self._buffer)[:size]
        if pipe.readinto(view) != size:
            raise EOFError("the reader child stopped mid-frame")
        return view

    def _chunk(self) -> list[dict[str, Any]] | None:
        """The next chunk's documents (its frames joined), None at the end."""
        chunk: list[dict[str, Any]] = []
        while True:
            frame = self._frame()
            if not frame:
                return None
            if frame == END_OF_CHUNK:
                return chunk
            chunk.extend(orjson.loads(frame))

    async def count_orders(self, window_start: datetime) -> int:
        self._start(window_start)
        return int(orjson.loads(await asyncio.to_thread(self._frame)))

    async def iter_orders(self, window_start: datetime) -> AsyncIterator[list[dict[str, Any]]]:
        if self._child is None:  # a caller that did not count first
            self._start(window_start)
            await asyncio.to_thread(self._frame)
        while True:
            chunk = await asyncio.to_thread(self._chunk)
            if chunk is None:
                return
            yield chunk

    async def check_connection(self) -> str:
        return "demo ERP through a child process"

    async def close(self) -> None:
        if self._child is not None:
            child, self._child = self._child, None
            await asyncio.to_thread(child.wait)
            if child.stdout is not None:
                child.stdout.close()


def demo_database(settings_path: Path) -> Path:
    from order_export_tui.settings import load_settings
    from order_export_tui.sources.demo.connector import demo_database_path

    return demo_database_path(load_settings(settings_path))


def piped_source(settings: Any, retrier: Any) -> PipedDemoSource:
    """The engine's source factory for a piped run."""
    from order_export_tui.sources.demo.connector import demo_database_path

    return PipedDemoSource(demo_database_path(settings))


def window_of(settings_path: Path) -> datetime:
    from order_export_tui.clock import local_now
    from order_export_tui.engine.runner import window_start
    from order_export_tui.settings import load_settings

    return window_start(local_now(), load_settings(settings_path).task.max_days_to_export)


async def child_piped_read(settings_path: Path) -> dict[str, float]:
    from order_export_tui.collector import settle_collector

    settle_collector()
    source = PipedDemoSource(demo_database(settings_path))
    start = window_of(settings_path)
    cpu, started = self_cpu(), time.perf_counter()
    await source.count_orders(start)
    count = 0
    async for chunk in source.iter_orders(start):
        count += len(chunk)
    await source.close()
    return figures(count, started, cpu)


async def child_export(settings_path: Path, piped: str) -> dict[str, float]:
    from order_export_tui.collector import settle_collector
    from order_export_tui.engine.runner import ExportEngine
    from order_export_tui.service.wiring import build_destination, build_source
    from order_export_tui.settings import load_settings
    from order_export_tui.state import StateStore, state_location

    settings = load_settings(settings_path)
    settle_collector()
    state = StateStore(state_location(settings))
    source_factory = piped_source if piped == "piped" else build_source
    engine = ExportEngine(
        settings, state, source_factory=source_factory, destination_factory=build_destination
    )
    cpu, started = self_cpu(), time.perf_counter()
    report = await engine.run("benchmark")
    result = figures(report.counts["read"], started, cpu)
    state.close()
    assert report.outcome == "succeeded", report.error
    result.update(new=report.counts["new"], unchanged=report.counts["unchanged"])
    return result


def figures(count: int, started: float, cpu: float) -> dict[str, float]:
    return {
        "seconds": time.perf_counter() - started,
        "cpu": self_cpu() - cpu,
        "child_cpu": child_cpu(),
        "orders": count,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def probe_child(*args: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


# --- the measurement -------------------------------------------------------------------------


def state_folder(root: Path, name: str) -> str:
    folder = root / name
    folder.mkdir()
    (folder / "erp.sqlite").symlink_to(root / "erp.sqlite")
    return str(write_settings(folder, 100))


def rate(result: dict[str, float]) -> float:
    return result["orders"] / result["seconds"]


def measure_round(root: Path, number: int, orders: int) -> None:
    load = os.getloadavg()[0]
    read = in_child("read", str(root / "settings.toml"))
    piped_read = probe_child("piped-read", str(root / "settings.toml"))
    a, b = state_folder(root, f"a{number}"), state_folder(root, f"b{number}")
    first_in = probe_child("export", a, "in-process")
    first_piped = probe_child("export", b, "piped")
    second_in = probe_child("export", b, "in-process")  # on the piped run's state
    second_piped = probe_child("export", a, "piped")  # on the in-process run's state
    for result in (first_in, first_piped):
        assert result["new"] == orders, result
    for result in (second_in, second_piped):
        assert result["unchanged"] == orders, result  # the piped documents hash the same
    print(f"\nround {number} (load {load:.1f} at its start)")
    print(
        f"  read only, in process  {rate(read):>8,.0f} /s  CPU {read['cpu']:5.2f}s"
        f"  peak RSS {read['rss_mb']:5.1f} MB"
    )
    print(
        f"  read only, piped       {rate(piped_read):>8,.0f} /s  CPU {piped_read['cpu']:5.2f}s"
        f" + reader {piped_read['child_cpu']:5.2f}s  peak RSS {piped_read['rss_mb']:5.1f}"
        f" + reader {piped_read['child_rss_mb']:5.1f} MB"
    )
    for label, result in (
        ("first run, in process", first_in),
        ("first run, piped", first_piped),
        ("unchanged, in process", second_in),
        ("unchanged, piped", second_piped),
    ):
        piped = "piped" in label
        line = (
            f"  {label:22s} {rate(result):>8,.0f} /s  {rate(result) / rate(read):.2f}x in-process"
            f" read"
        )
        if piped:
            line += f", {rate(result) / rate(piped_read):.2f}x piped read"
        line += f"  CPU {result['cpu']:5.2f}s"
        if piped:
            line += f" + reader {result['child_cpu']:5.2f}s"
        line += f"  peak RSS {result['rss_mb']:5.1f} MB"
        if piped:
            total = result["rss_mb"] + result["child_rss_mb"]
            line += f" + reader {result['child_rss_mb']:5.1f} = {total:5.1f} MB"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--reader", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader:
        asyncio.run(reader_main(Path(args.reader[0]), args.reader[1]))
        return
    if args.child:
        kind, *rest = args.child
        if kind == "piped-read":
            result = asyncio.run(child_piped_read(Path(rest[0])))
        else:
            result = asyncio.run(child_export(Path(rest[0]), rest[1]))
        print(json.dumps(result))
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}; {args.orders:,} orders, batch_size 100"
    )
    with tempfile.TemporaryDirectory(prefix="order-export-probe-") as folder:
        root = Path(folder)
        settings = str(write_settings(root, 100))
        in_child("generate", settings, str(args.orders))
        for number in range(1, args.rounds + 1):
            measure_round(root, number, args.orders)


if __name__ == "__main__":
    main()
