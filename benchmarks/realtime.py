"""Real-time delivery: latency from the 202 to the destination's confirmation, and throughput.

    python benchmarks/realtime.py                  # 100 events/s for 60 s (issue 7's load)
    python benchmarks/realtime.py --rate 200 --seconds 20

The service (intake + delivery) runs in this process's event loop as in the daemon; the
webstore is a separate thread with its own loop and HTTP client, sending signed order-completed
events at a steady rate; the destination is a loopback HTTP server answering each request
after 20 ms. Latency is measured from the intake's commit (just before its 202) to the
destination's answer. Baseline of the same run: the sender's own 202 round trip.
Targets: p99 under 500 ms, 100 events/s sustained with no growth of the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from order_export_tui.engine.runner import ExportEngine  # noqa: E402
from order_export_tui.service.delivery import EventDelivered  # noqa: E402
from order_export_tui.service.export_service import ExportService, RealtimeChannel  # noqa: E402
from order_export_tui.service.intake import signature_for  # noqa: E402
from order_export_tui.service.wiring import build_source  # noqa: E402
from order_export_tui.settings import load_settings  # noqa: E402
from order_export_tui.state import StateStore  # noqa: E402
from tests.support.fault_server import FaultServer, Received  # noqa: E402
from tests.support.loopback_destination import LoopbackDestination, OrderStore  # noqa: E402
from tests.support.orders import VALID  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

SECRET = "benchmark-secret"
LATENCY_SECONDS = 0.020


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def send_events(
    url: str, rate: float, seconds: float, round_trips: list[float], took: list[float]
) -> None:
    """The webstore: signed events at a steady rate, from its own thread and loop."""

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            start = time.perf_counter()
            total = int(rate * seconds)
            pending: set[asyncio.Task[None]] = set()
            for n in range(total):
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(post(client, n))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)
            took.append(time.perf_counter() - start)

    async def post(client: httpx.AsyncClient, n: int) -> None:
        doc = copy.deepcopy(VALID)
        doc["order_id"] = f"RT-{n:07d}"
        body = orjson.dumps(doc)
        sent = time.perf_counter()
        answer = await client.post(
            "/webhooks/order-completed",
            content=body,
            headers={"X-Signature": signature_for(SECRET, body)},
        )
        assert answer.status_code == 202, answer.text
        round_trips.append(time.perf_counter() - sent)

    asyncio.run(run())


async def measure(rate: float, seconds: float) -> None:
    store = OrderStore()

    def slow_platform(request: Received) -> tuple[int, Any, dict[str, str]]:
        time.sleep(LATENCY_SECONDS)
        return store.handle(request)

    with (
        tempfile.TemporaryDirectory(prefix="order-export-rt-") as folder,
        FaultServer(slow_platform) as platform_server,
    ):
        port = free_port()
        settings_path = Path(folder) / "settings.toml"
        settings_path.write_bytes(
            tomli_w.dumps(
                {
                    "task": {"run_on_schedule": False, "run_interval_minutes": 0},
                    "webhook": {"enabled": True, "listen": f"127.0.0.1:{port}"},
                }
            ).encode()
        )
        settings = load_settings(settings_path)
        state = StateStore(settings.state_database_path)
        intake_state = StateStore(settings.state_database_path, durable=True)

        def destination(s: Any) -> LoopbackDestination:
            return LoopbackDestination(platform_server.url)

        channel = RealtimeChannel(
            settings,
            state=state,
            intake_state=intake_state,
            destination_factory=destination,
            secret=SECRET,
        )
        latencies: list[float] = []
        channel.subscribe(
            lambda e: latencies.append(e.latency_seconds) if isinstance(e, EventDelivered) else None
        )
        engine = ExportEngine(
            settings, state, source_factory=build_source, destination_factory=destination
        )
        service = ExportService(settings, engine, realtime=channel)
        serving = asyncio.create_task(service.serve())
        while not channel.listening:
            await asyncio.sleep(0.01)

        round_trips: list[float] = []
        took: list[float] = []
        sender = threading.Thread(
            target=send_events,
            args=(f"http://127.0.0.1:{port}", rate, seconds, round_trips, took),
        )
        started = time.perf_counter()
        sender.start()
        queue_samples: list[int] = []
        while sender.is_alive():
            await asyncio.sleep(1.0)
            queue_samples.append(state.event_counts().get("queued", 0))
        sending_seconds = took[0]
        total = int(rate * seconds)
        while len(latencies) < total:
            await asyncio.sleep(0.05)
        drained_seconds = time.perf_counter() - started
        await service.stop()
        await serving
        intake_state.close()
        state.close()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{total} events at {rate:g}/s for {seconds:g}s; destination answers after 20 ms")
    print(f"  accepted      {len(round_trips) / sending_seconds:8.1f} events/s")
    print(
        f"  delivered     {total / drained_seconds:8.1f} events/s (all {total} exactly once:"
        f" {len(store.orders) == total and set(store.writes.values()) == {1}})"
    )
    print(
        f"  202 -> confirmed  p50 {statistics.median(latencies) * 1000:6.1f} ms"
        f"  p99 {percentile(latencies, 0.99) * 1000:6.1f} ms"
        f"  max {max(latencies) * 1000:6.1f} ms"
    )
    print(
        f"  baseline, the webstore's 202 round trip  p50"
        f" {statistics.median(round_trips) * 1000:6.1f} ms"
        f"  p99 {percentile(round_trips, 0.99) * 1000:6.1f} ms"
    )
    print(
        f"  queue length each second: max {max(queue_samples, default=0)},"
        f" last {queue_samples[-1] if queue_samples else 0}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(measure(args.rate, args.seconds))


if __name__ == "__main__":
    main()
