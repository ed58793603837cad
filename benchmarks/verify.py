"""`verify` at scale: 10,000 and 100,000 orders against the loopback Mailchimp and Dotdigital
(tests/fakes, 20 ms latency on every request) and the dry-run file.

    python benchmarks/verify.py                          # 10,000 and 100,000, every platform
    python benchmarks/verify.py --sizes 10000 --platforms dotdigital --latency-ms 50

This process runs each fake (in threads) and seeds its store directly (no engine run), or
writes the dry-run file: the window's orders with some drift made (1 in 100 deleted, 1 in 97
changed, 1 in 200 extra). Each measurement runs in a child process of its own, so its peak RSS
(the kernel's `VmHWM`, see `peak_rss_kib`) is the verify's alone, never the fake's: the child
runs the engine's verify (`engine.verify.read_copy`, what `order-export verify` runs): the
platform's copy read back through the destination (pages through the real request code,
spilled to a sorted SQLite file), the ERP's window read from a source (the same orders,
generated again in the child, in no particular order, in chunks as a source yields them;
validated, with the state database's payment statuses applied, spilled) and both compared in
one pass; it checks that the drift found is the drift made.
Reported per platform and size: requests per 10,000 orders (goal <= 25), orders checked per
second, and peak RSS (goal: flat between 10,000 and 100,000).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from order_export_tui.destinations.dotdigital.destination import DotdigitalDestination  # noqa: E402
from order_export_tui.destinations.dotdigital.records import (  # noqa: E402
    IMPORT_PATH,
    order_record_json,
)
from order_export_tui.destinations.file.destination import FileDestination  # noqa: E402
from order_export_tui.destinations.mailchimp.destination import MailchimpDestination  # noqa: E402
from order_export_tui.destinations.mailchimp.payloads import order_body  # noqa: E402
from order_export_tui.engine.verify import read_copy  # noqa: E402
from order_export_tui.orders import OrderDocument  # noqa: E402
from order_export_tui.state import StateStore  # noqa: E402
from order_export_tui.transport.retry import Retrier, RetryPolicy  # noqa: E402

API_KEY = "benchmark0000000000000000000000-us1"
STORE = "bench-store"
AUDIENCE = "bench-audience"
DD_USER = "apiuser-bench@apiconnector.com"
DD_PASSWORD = "bench-password"
DD_PASSWORD_ENV = "ORDER_EXPORT_BENCHMARK_DD_PASSWORD"
COLLECTION = "Orders"
REQUEST_GOAL = 25  # requests per 10,000 orders
CUSTOMERS = 5000  # distinct e-mail addresses among the orders
EPOCH = datetime(2026, 1, 1).astimezone()


# --- the orders (the same in both processes) -----------------------------------------------


def erp_order(number: int, template: OrderDocument) -> OrderDocument:
    """A valid order document of its own (a shallow copy of `template`: what differs from
    order to order is new, the addresses and lines are shared, never changed)."""
    doc = dict(template)
    doc["order_id"] = f"SO-{number:07d}"
    doc["order_date"] = (EPOCH + timedelta(seconds=number)).isoformat()
    doc["customer"] = {**template["customer"], "email": f"customer{number % CUSTOMERS}@example.com"}
    doc["total"] = round(10 + (number % 997) / 10, 2)
    return doc


def erp_orders(count: int) -> Iterator[OrderDocument]:
    """The ERP's window, in no particular order (a stride through the numbers)."""
    from tests.support.orders import VALID

    stride = 7919  # a prime: every number once, far from sorted
    for step in range(count):
        yield erp_order((step * stride) % count, VALID)


def drift_made(number: int) -> str:
    if number % 100 == 0:
        return "missing"
    if number % 97 == 0:
        return "different"
    return ""


def extras(count: int) -> range:
    return range(count, count + count // 200)


# --- the child: the engine's verify ----------------------------------------------------------


class GeneratedSource:
    """The ERP's window as a source yields it: chunks of 1,000 documents, in no order."""

    async def iter_orders(self, window_start: datetime) -> AsyncIterator[list[OrderDocument]]:
        chunk: list[OrderDocument] = []
        for doc in erp_orders(self.count):
            chunk.append(doc)
            if len(chunk) == 1000:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def __init__(self, count: int) -> None:
        self.count = count


async def measure(platform: str, url: str, count: int) -> dict[str, Any]:
    since = EPOCH - timedelta(days=1)
    retrier = Retrier(RetryPolicy(3, 60))
    destination: MailchimpDestination | DotdigitalDestination | FileDestination
    if platform == "file":
        destination = FileDestination(Path(url), store_name="Bench")
    elif platform == "mailchimp":
        destination = MailchimpDestination(
            api_key=API_KEY,
            api_key_env="UNUSED",
            store_id=STORE,
            list_id=AUDIENCE,
            store_name="Bench",
            base_url=url,
        )
    else:
        os.environ[DD_PASSWORD_ENV] = DD_PASSWORD
        destination = DotdigitalDestination(
            base_url=url,
            api_user=DD_USER,
            password_env=DD_PASSWORD_ENV,
            collection=COLLECTION,
            store_name="Bench",
        )
    with tempfile.TemporaryDirectory() as folder:
        state = StateStore(Path(folder) / "state.sqlite")
        started = time.perf_counter()
        reading = await read_copy(
            state,
            source=GeneratedSource(count),  # type: ignore[arg-type]
            destination=destination,
            start=since,
            retrier=retrier,
        )
        done = time.perf_counter()
        await destination.close()
        state.close()
    kinds = Counter(kind for kind, _ in {(item.kind, item.order_id) for item in reading.drift})
    return {
        "total_seconds": done - started,
        "checked": reading.checked,
        "drift": dict(kinds),
        "retried": retrier.retried,
        "peak_rss_mib": peak_rss_kib() / 1024,
    }


def peak_rss_kib() -> float:
    """This process's peak resident set: the kernel's high-water mark of its own memory
    (`VmHWM`). Linux's `ru_maxrss` is no use here: it keeps the peak of the process before
    `exec`, the parent's, which holds the fake's 100,000 orders when it forks the child."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# --- the parent: the fakes, their stores, the children ------------------------------------------


def seed(fake: Any, platform: str, count: int) -> Counter[str]:
    """The platform's copy of `count` ERP orders with drift made; the drift expected."""
    from tests.support.orders import VALID

    expected: Counter[str] = Counter()
    numbers = [*range(count), *extras(count)]
    numbers.sort(key=lambda n: (n * 104729) % 1_000_003)  # the platform's own order
    for number in numbers:
        doc = erp_order(number, VALID)
        kind = "extra" if number >= count else drift_made(number)
        if kind:
            expected[kind] += 1
        if kind == "missing":
            continue
        if kind == "different":
            doc["payment_status"] = "refunded"
        if platform == "mailchimp":
            fake.put_order(STORE, order_body(doc))
        elif platform == "dotdigital":
            fake.put_record(doc["customer"]["email"], doc["order_id"], order_record_json(doc, "B"))
        else:
            fake.append(doc)
    return expected


class DryRunFile:
    """The file destination's "store": bulk-import lines of 1,000 records, as a run writes."""

    def __init__(self, path: Path) -> None:
        self.url = str(path)
        self.attempts = 0  # the file costs no request
        self._file = path.open("w")
        self._records: list[dict[str, Any]] = []

    def append(self, doc: OrderDocument) -> None:
        identity = {"identifier": "email", "value": doc["customer"]["email"]}
        record = {"key": doc["order_id"], "contactIdentity": identity}
        self._records.append(record | {"json": order_record_json(doc, "B")})
        if len(self._records) == 1000:
            self.flush()

    def flush(self) -> None:
        if self._records:
            body = {"collectionName": COLLECTION, "records": self._records}
            self._file.write(json.dumps({"method": "PUT", "path": IMPORT_PATH, "body": body}))
            self._file.write("\n")
            self._records = []

    def __enter__(self) -> DryRunFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()


def run_one(platform: str, count: int, latency: float) -> dict[str, Any]:
    from tests.fakes.dotdigital import FakeDotdigital, Faults
    from tests.fakes.mailchimp import MailchimpFake

    fake: Any
    folder = tempfile.TemporaryDirectory()
    if platform == "file":
        fake = DryRunFile(Path(folder.name) / "orders.jsonl")
    elif platform == "mailchimp":
        fake = MailchimpFake(API_KEY, lists=(AUDIENCE,), latency=latency)
        fake.stores[STORE] = {"id": STORE, "list_id": AUDIENCE, "name": "Bench"}
    else:
        fake = FakeDotdigital(DD_USER, DD_PASSWORD, faults=Faults(latency=latency))
    with folder, fake:
        expected = seed(fake, platform, count)
        if platform == "file":
            fake.flush()
            fake._file.flush()
        before = fake.attempts
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                platform,
                "--url",
                fake.url,
                "--orders",
                str(count),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        requests = fake.attempts - before
    if child.returncode != 0:
        raise SystemExit(f"{platform} {count}: the measurement failed:\n{child.stderr}")
    result: dict[str, Any] = json.loads(child.stdout)
    result.update(platform=platform, orders=count, requests=requests, expected=dict(expected))
    return result


def report(results: list[dict[str, Any]]) -> bool:
    ok = True
    print(
        f"{'platform':<11}{'orders':>9}{'requests':>10}{'per 10k':>9}{'seconds':>9}"
        f"{'checked/s':>11}{'peak RSS MiB':>14}  drift"
    )
    for r in results:
        per_10k = r["requests"] * 10_000 / r["orders"]
        checked = r["checked"] / r["total_seconds"]
        same = r["drift"] == r["expected"]
        ok = ok and same and per_10k <= REQUEST_GOAL
        print(
            f"{r['platform']:<11}{r['orders']:>9,}{r['requests']:>10}{per_10k:>9.1f}"
            f"{r['total_seconds']:>9.2f}{checked:>11,.0f}"
            f"{r['peak_rss_mib']:>14.1f}  {r['drift']}{'' if same else ' != ' + str(r['expected'])}"
        )
    for platform in sorted({r["platform"] for r in results}):
        sizes = sorted((r for r in results if r["platform"] == platform), key=lambda r: r["orders"])
        if len(sizes) > 1:
            small, large = sizes[0], sizes[-1]
            growth = large["peak_rss_mib"] - small["peak_rss_mib"]
            print(
                f"{platform}: peak RSS {small['peak_rss_mib']:.1f} MiB at {small['orders']:,}, "
                f"{large['peak_rss_mib']:.1f} MiB at {large['orders']:,} ({growth:+.1f} MiB)"
            )
    print(
        f"goal: <= {REQUEST_GOAL} requests per 10,000 orders, drift found == drift made:"
        f" {'met' if ok else 'NOT met'}"
    )
    return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--platforms", default="mailchimp,dotdigital,file")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--orders", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(measure(args.child, args.url, args.orders))))
        return
    results = [
        run_one(platform, int(size), args.latency_ms / 1000)
        for platform in args.platforms.split(",")
        for size in args.sizes.split(",")
    ]
    sys.exit(0 if report(results) else 1)


if __name__ == "__main__":
    main()
