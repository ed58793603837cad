"""The process-wide garbage-collector policy of the commands that export.

A run builds every order as a tree of dicts and lists (a dozen containers an order) and lets
go of each within a batch. With CPython's defaults (a young collection every 700 net new
containers) a 100,000-order run collects the young generation ~2,000 times and walks the
surviving ones into the older generations, which the imported package (~30,000 containers)
also fills: a tenth of a run's CPU. Set once, at the start of `run`, `daemon` and the
dashboard's hosted engine (never from a library thread): what was imported is frozen out of
every collection, and the young generation is collected every 20,000 net new containers.
Peak memory grows by at most those 20,000 short-lived containers (a few MB), and reference
cycles (rare here: asyncio tasks, exceptions) are still collected.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def settle_collector() -> None:
    """Freeze what is alive now (the imports) and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
