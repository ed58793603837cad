"""What keeping each unshipped order's document costs a run's state writes (interfaces.md §7:
an order the ERP stops listing is sent once as cancelled, from the document kept for it).

    python benchmarks/kept_documents.py [--orders 100000] [--rounds 3]

Records `--orders` demo orders into a fresh state database in batches of 100, as a run's
first pass does, once keeping no documents (the baseline: the release before) and once
keeping each order's document (`engine.batches.cancellable_document`), alternating for
`--rounds` rounds; prints orders recorded per second and the state file's size for each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from order_export_tui.engine.batches import cancellable_document  # noqa: E402
from order_export_tui.orders import content_hash  # noqa: E402
from order_export_tui.sources.demo import DemoErpSource, generate_demo_erp  # noqa: E402
from order_export_tui.state import ExportedOrder, StateStore  # noqa: E402

BATCH = 100


async def demo_orders(folder: Path, orders: int) -> list[dict[str, object]]:
    path = folder / "erp.sqlite"
    generate_demo_erp(path, orders=orders, days=30, malformed=0)
    source = DemoErpSource(path)
    try:
        return [doc async for chunk in source.iter_orders(datetime(1970, 1, 1, tzinfo=UTC))
                for doc in chunk]  # fmt: skip
    finally:
        await source.close()


def record(folder: Path, docs: list[dict[str, object]], keep: bool) -> tuple[float, int]:
    path = folder / f"state-{'kept' if keep else 'none'}-{time.monotonic_ns()}.sqlite"
    state = StateStore(path)
    now = datetime.now(UTC)
    started = time.perf_counter()
    for first in range(0, len(docs), BATCH):
        batch = docs[first : first + BATCH]
        state.record_batch(
            run_id=1,
            now=now,
            exported=[
                ExportedOrder(
                    str(doc["order_id"]),
                    content_hash(doc),
                    str(doc["shipping_status"]),
                    str(doc["payment_status"]),
                    cancellable_document(doc) if keep else None,
                    str(doc["order_date"]),
                )
                for doc in batch
            ],
            skipped={},
            resolved=[],
        )
    elapsed = time.perf_counter() - started
    state.close()
    size = sum(p.stat().st_size for p in folder.glob(f"{path.name}*"))
    return len(docs) / elapsed, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        docs = asyncio.run(demo_orders(folder, args.orders))
        unshipped = sum(1 for doc in docs if doc["shipping_status"] != "shipped")
        print(f"{len(docs):,} demo orders, {unshipped:,} not shipped (their documents kept)")
        for round_no in range(1, args.rounds + 1):
            for keep in (False, True):
                rate, size = record(folder, docs, keep)
                what = "documents kept" if keep else "no documents (baseline)"
                print(
                    f"round {round_no}: {what:<24} {rate:>9,.0f} orders/s,"
                    f" state file {size / 1e6:6.1f} MB"
                )


if __name__ == "__main__":
    main()
