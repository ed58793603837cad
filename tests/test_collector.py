"""The collector policy of the commands that export (`order_export_tui.collector`), checked in
a child interpreter: it changes process-wide state that the test process must keep."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc, weakref
from order_export_tui.collector import YOUNG_THRESHOLD, settle_collector

default = gc.get_threshold()
settle_collector()
assert gc.get_freeze_count() > 1_000, gc.get_freeze_count()  # the imports are frozen
assert gc.get_threshold() == (YOUNG_THRESHOLD, *default[1:]), gc.get_threshold()


class Node:
    pass


node = Node()
node.me = node  # a reference cycle: only the collector frees it
gone = weakref.ref(node)
del node
kept = [[] for _ in range(YOUNG_THRESHOLD + 1_000)]  # net new containers: a young collection
assert gone() is None, "a cycle made after the policy was set was never collected"
print("ok")
"""


def test_settled_collector_freezes_imports_and_still_collects_cycles() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
