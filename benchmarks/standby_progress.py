"""How late a standby hears the leader's run (interfaces.md §10; issue 24): the leader
publishes its run events with NOTIFY, a standby relays them to its control socket.

    python benchmarks/standby_progress.py                  # 5,000 orders, batches of 10
    python benchmarks/standby_progress.py --orders 20000 --batch 100

A PostgreSQL server is started for the run (tests/support/postgres.py). A client attached
to the leader's control socket (the baseline) and one attached to the standby's follow the
same run; printed: the run's duration, the batches each heard, and how much later the
standby's client heard each batch than the leader's (median, 95th percentile, max).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from order_export_tui.engine.events import BatchFinished, RunFinished  # noqa: E402
from order_export_tui.service.control_client import AttachedControl  # noqa: E402
from order_export_tui.settings import load_settings  # noqa: E402
from tests.conftest import write_settings  # noqa: E402
from tests.support.cli import order_export  # noqa: E402
from tests.support.daemon_process import DaemonProcess  # noqa: E402
from tests.support.postgres import start_postgres  # noqa: E402
from tests.support.state_backends import postgres_state_url  # noqa: E402


def folder_for(root: Path, name: str, url: str, batch: int) -> Path:
    folder = root / name
    folder.mkdir()
    write_settings(
        folder,
        {
            "storage": {"state_database": url},
            "erp": {"demo_database": str(root / "erp-demo.sqlite")},
            "file": {"path": str(root / "orders.jsonl")},
            "task": {"batch_size": batch, "run_on_schedule": False},
        },
    )
    return folder


async def follow(folders: list[Path]) -> tuple[list[dict[int, float]], float]:
    """Each client's arrival time of each batch of one run, and the run's duration."""
    heard: list[dict[int, float]] = [{} for _ in folders]
    ended = [asyncio.Event() for _ in folders]
    controls = []
    for index, folder in enumerate(folders):
        path = load_settings(folder / "settings.toml").control_socket_path
        control = AttachedControl(path)

        def on_event(event: object, index: int = index) -> None:
            if isinstance(event, BatchFinished):
                heard[index][event.batch_no] = time.monotonic()
            elif isinstance(event, RunFinished):
                ended[index].set()

        control.subscribe(on_event)
        controls.append((control, asyncio.create_task(control.serve())))
    while not all(control.connected for control, _ in controls):
        await asyncio.sleep(0.05)
    started = time.monotonic()
    answer = await controls[0][0].start_run("manual")
    assert answer.ok, answer.message
    await ended[0].wait()
    duration = time.monotonic() - started
    await asyncio.wait_for(ended[1].wait(), 60)
    for control, task in controls:
        await control.stop()
        await task
    return heard, duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    server = start_postgres()
    daemons: list[DaemonProcess] = []
    try:
        with tempfile.TemporaryDirectory(prefix="order-export-progress-") as folder:
            root = Path(folder)
            url = postgres_state_url(server, server.create_database())
            first = folder_for(root, "a", url, args.batch)
            second = folder_for(root, "b", url, args.batch)
            made = order_export("demo", "--orders", str(args.orders), "--malformed", "0", cwd=first)
            assert made.returncode == 0, made.stderr
            daemons.append(DaemonProcess(first).wait_started())
            daemons.append(DaemonProcess(second))
            daemons[1].wait_for(lambda text: "standby: serving the control socket" in text)
            (on_leader, on_standby), duration = asyncio.run(follow([first, second]))
    finally:
        for daemon in daemons:
            daemon.stop()
        server.stop()
    lags = sorted(on_standby[n] - on_leader[n] for n in on_standby if n in on_leader)
    print(f"run of {args.orders} orders in batches of {args.batch}: {duration:.2f} s")
    print(f"  batches heard: leader's socket {len(on_leader)}, standby's {len(on_standby)}")
    if lags:
        p95 = lags[min(len(lags) - 1, int(len(lags) * 0.95))]
        median = statistics.median(lags)
        print(
            f"  standby later than the leader's socket by: median {median * 1000:.0f} ms,"
            f" p95 {p95 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
