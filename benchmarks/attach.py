"""What attaching costs: event latency to an attached client, and a daemon's throughput with
three attached dashboards against none.

    .venv/bin/python benchmarks/attach.py [--orders 20000] [--rounds 3]

1. Latency: the service runs in this process (as the daemon runs it) and serves its control
   socket; a client in another thread, with its own event loop, follows the event stream.
   Each BatchFinished is stamped when the engine emits it and when the client has decoded
   it (one clock: the same process). p50 / p99 over every batch of a run.
2. Throughput: a real `order-export daemon` exports the demo ERP to the dry-run file, with no
   client and with three clients following its event stream (what three attached dashboards
   receive); the ratio of orders/s, median of the rounds, alternating to share the noise.
Loopback and Unix sockets only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from order_export_tui.engine.events import BatchFinished, RunFinished
from order_export_tui.service.control_client import AttachedControl
from order_export_tui.service.session import hosted_session
from order_export_tui.settings import load_settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from tests.support.daemon_process import DaemonProcess

SETTINGS = {
    "task": {"run_on_schedule": False, "run_interval_minutes": 0, "batch_size": 100},
    "destination": {"app": "file"},
    "storage": {"control_socket": "data/oe.sock"},
}


def shop(folder: Path, orders: int, erp: Path | None) -> Path:
    folder.mkdir(parents=True)
    path = folder / "settings.toml"
    path.write_text(tomli_w.dumps(SETTINGS))
    settings = load_settings(path)
    demo_database_path(settings).parent.mkdir(parents=True, exist_ok=True)
    if erp is None:
        generate_demo_erp(demo_database_path(settings), orders=orders, seed=3, days=20, malformed=0)
    else:
        shutil.copy(erp, demo_database_path(settings))
    return path


class Follower(threading.Thread):
    """An attached client in its own thread and event loop, stamping what it receives."""

    def __init__(self, socket: Path) -> None:
        super().__init__(daemon=True)
        self.socket = socket
        self.received: dict[tuple[int, int], float] = {}
        self.connected = threading.Event()
        self.finished = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._control: AttachedControl | None = None

    def run(self) -> None:
        asyncio.run(self._follow())

    async def _follow(self) -> None:
        self._loop = asyncio.get_running_loop()
        control = self._control = AttachedControl(self.socket)

        def on_event(event: object) -> None:
            if isinstance(event, BatchFinished):
                self.received[(event.run_id, event.batch_no)] = time.perf_counter()
            elif isinstance(event, RunFinished):
                self.finished.set()

        control.subscribe(on_event)
        serving = asyncio.create_task(control.serve())
        while not control.connected:
            await asyncio.sleep(0.01)
        self.connected.set()
        await serving

    def stop(self) -> None:
        if self._loop is not None and self._control is not None:
            asyncio.run_coroutine_threadsafe(self._control.stop(), self._loop).result(10)
        self.join(10)


async def latency(folder: Path, orders: int) -> list[float]:
    settings = load_settings(shop(folder, orders, None))
    emitted: dict[tuple[int, int], float] = {}
    with hosted_session(settings, role="daemon") as session:
        session.service.engine.subscribe(
            lambda event: (
                emitted.__setitem__((event.run_id, event.batch_no), time.perf_counter())
                if isinstance(event, BatchFinished)
                else None
            )
        )
        serving = asyncio.create_task(session.control.serve())
        while not settings.control_socket_path.exists():
            await asyncio.sleep(0.01)
        follower = Follower(settings.control_socket_path)
        follower.start()
        await asyncio.to_thread(follower.connected.wait, 30)
        await session.control.start_run("manual")
        await session.service.wait_for_run()
        await asyncio.to_thread(follower.finished.wait, 30)
        await asyncio.to_thread(follower.stop)
        await session.control.stop()
        await serving
    return [follower.received[key] - emitted[key] for key in emitted if key in follower.received]


def daemon_run(folder: Path, clients: int) -> float:
    """Orders per second of one daemon run (started by SIGUSR1, so no command follows it)
    with `clients` clients following its event stream."""
    settings = load_settings(folder / "settings.toml")
    daemon = DaemonProcess(folder).wait_started()
    followers = [Follower(settings.control_socket_path) for _ in range(clients)]
    try:
        for follower in followers:
            follower.start()
            follower.connected.wait(30)
        daemon.process.send_signal(signal.SIGUSR1)
        daemon.wait_for(lambda text: "run 1 succeeded" in text, timeout=600)
        with sqlite3.connect(settings.state_database_path) as db:
            started, finished, read = db.execute(
                "SELECT started_at, finished_at, read FROM run WHERE run_id = 1"
            ).fetchone()
        seconds = (
            datetime.fromisoformat(finished) - datetime.fromisoformat(started)
        ).total_seconds()
        return read / seconds
    finally:
        for follower in followers:
            follower.stop()
        daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oe-attach-", dir="/tmp") as tmp:
        root = Path(tmp)
        samples = asyncio.run(latency(root / "latency", args.orders))
        samples_ms = sorted(1000 * s for s in samples)
        p50 = statistics.median(samples_ms)
        p99 = samples_ms[min(len(samples_ms) - 1, int(len(samples_ms) * 0.99))]
        print(f"event -> attached client: {len(samples_ms)} batches, p50 {p50:.1f} ms,")
        print(f"  p99 {p99:.1f} ms, max {samples_ms[-1]:.1f} ms (target: p99 under 100 ms)")

        erp = root / "erp.sqlite"
        generate_demo_erp(erp, orders=args.orders, seed=5, days=20, malformed=0)
        alone: list[float] = []
        watched: list[float] = []
        for round_no in range(args.rounds):
            for clients, into in ((0, alone), (3, watched)):
                folder = root / f"round{round_no}-{clients}"
                shop(folder, args.orders, erp)
                into.append(daemon_run(folder, clients))
        a, w = statistics.median(alone), statistics.median(watched)
        print(f"daemon, no client:      {a:8,.0f} orders/s (median of {args.rounds})")
        print(f"daemon, three attached: {w:8,.0f} orders/s (median of {args.rounds})")
        print(f"ratio: {w / a:.3f}x (target: at least 0.95x)")


if __name__ == "__main__":
    main()
