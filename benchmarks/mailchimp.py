"""Mailchimp destination throughput: demo orders through the real engine into the loopback
Mailchimp (tests/fakes/mailchimp.py, in its own process, 20 ms latency on every request),
beside a naive sequential baseline measured in the same run.

    python benchmarks/mailchimp.py                       # 5,000 orders, 8 connections
    python benchmarks/mailchimp.py --orders 2000 --connections 4 --latency-ms 50

- engine: `order-export`'s engine and MailchimpDestination, `mailchimp.max_connections`
  connections, every order new (a backfill: store, customers, products, orders);
- baseline: one request at a time, per order a customer PUT, a product POST per line and the
  order POST (same bodies), timed on the first `--baseline-orders` orders (300: at about four
  requests an order it is the slow part of the benchmark, and its rate is flat in N).
Target (issue 5): the engine at least 6 times the baseline's orders per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from order_export_tui.destinations.mailchimp import payloads  # noqa: E402
from order_export_tui.engine.runner import ExportEngine, window_start  # noqa: E402
from order_export_tui.orders import OrderDocument, order_problem  # noqa: E402
from order_export_tui.service.wiring import build_destination, build_source  # noqa: E402
from order_export_tui.settings import Settings, load_settings  # noqa: E402
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp  # noqa: E402
from order_export_tui.sources.demo.connector import demo_database_path  # noqa: E402
from order_export_tui.state import StateStore  # noqa: E402

API_KEY = "benchmark0000000000000000000000-us1"
KEY_ENV = "ORDER_EXPORT_BENCHMARK_MAILCHIMP_KEY"
AUDIENCE = "bench-audience"
TARGET_RATIO = 6.0


@contextmanager
def fake_mailchimp(latency_ms: float) -> Iterator[str]:
    """The loopback Mailchimp in a child process (its work does not share our interpreter);
    yields its base URL."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.mailchimp",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--list-id",
            AUDIENCE,
            "--latency-ms",
            str(latency_ms),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        child.terminate()
        child.wait(timeout=10)


def write_settings(folder: Path, base_url: str, connections: int) -> Settings:
    path = folder / "settings.toml"
    settings = {
        "task": {
            "run_on_schedule": False,
            "run_interval_minutes": 0,
            "batch_size": 100,
            "max_days_to_export": 30,
            "max_items_to_skip": 0,
            "max_archived_log_files": 5,
        },
        "erp": {"source": "demo", "demo_database": "erp.sqlite"},
        "destination": {"app": "mailchimp"},
        "mailchimp": {
            "api_key_env": KEY_ENV,
            "base_url": base_url,
            "store_id": "bench-engine",
            "list_id": AUDIENCE,
            "max_connections": connections,
        },
        "storage": {"state_database": "state.sqlite", "logs_dir": "logs"},
    }
    path.write_bytes(tomli_w.dumps(settings).encode())
    return load_settings(path)


async def first_orders(settings: Settings, count: int) -> list[OrderDocument]:
    source = DemoErpSource(demo_database_path(settings))
    docs: list[OrderDocument] = []
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    async for chunk in source.iter_orders(start):
        docs.extend(doc for doc in chunk if order_problem(doc) is None)
        if len(docs) >= count:
            break
    await source.close()
    return docs[:count]


async def naive_baseline(base_url: str, docs: list[OrderDocument]) -> float:
    """Seconds for one request at a time: customer PUT, product POSTs, order POST per order."""
    store = "bench-baseline"
    stores = "/ecommerce/stores"
    async with httpx.AsyncClient(
        base_url=base_url, auth=("benchmark", API_KEY), timeout=120
    ) as client:
        store_body = payloads.store_body(store, AUDIENCE, "Baseline", "EUR", syncing=False)
        (await client.post(stores, json=store_body)).raise_for_status()
        started = time.perf_counter()
        for doc in docs:
            customer = payloads.customer_body(doc)
            await client.put(f"{stores}/{store}/customers/{customer['id']}", json=customer)
            for line in doc["lines"]:
                product = payloads.product_body(line, line["unit_price"])
                await client.post(f"{stores}/{store}/products", json=product)
            answer = await client.post(f"{stores}/{store}/orders", json=payloads.order_body(doc))
            answer.raise_for_status()
        return time.perf_counter() - started


async def engine_run(settings: Settings) -> tuple[float, int]:
    """Seconds for the real engine's run, and the orders it sent."""
    state = StateStore(settings.state_database_path)
    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=build_destination
    )
    started = time.perf_counter()
    report = await engine.run("benchmark")
    seconds = time.perf_counter() - started
    state.close()
    assert report.outcome == "succeeded", report.error
    return seconds, report.counts["new"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--baseline-orders", type=int, default=300)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    os.environ[KEY_ENV] = API_KEY
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs;"
        f" fake Mailchimp latency {args.latency_ms:g} ms per request"
    )
    with tempfile.TemporaryDirectory() as folder, fake_mailchimp(args.latency_ms) as url:
        settings = write_settings(Path(folder), url, args.connections)
        generate_demo_erp(
            demo_database_path(settings), orders=args.orders, seed=1, days=29, malformed=0
        )
        docs = asyncio.run(first_orders(settings, args.baseline_orders))
        baseline_seconds = asyncio.run(naive_baseline(url, docs))
        engine_seconds, sent = asyncio.run(engine_run(settings))
    baseline_rate = len(docs) / baseline_seconds
    engine_rate = sent / engine_seconds
    ratio = engine_rate / baseline_rate
    print(
        f"baseline (sequential, first {len(docs)} orders): {baseline_rate:8.1f} orders/s"
        f"  ({baseline_seconds:.1f} s)"
    )
    print(
        f"engine ({args.connections} connections, {sent} orders):     {engine_rate:8.1f} orders/s"
        f"  ({engine_seconds:.1f} s)"
    )
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"ratio: {ratio:.1f}x (target >= {TARGET_RATIO:g}x: {verdict})")


if __name__ == "__main__":
    main()
