"""SIGKILL `order-export run` at random points: a complete run afterwards loses nothing and
records nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from order_export_tui.destinations.file.connector import file_path
from order_export_tui.settings import load_settings
from order_export_tui.sources.demo.connector import demo_database_path
from tests.conftest import write_settings
from tests.support.cli import REPO, order_export
from tests.support.demo_erp import expected_orders

BATCH = 25
KILLS = 6


def kill_runs(folder: Path, rng: random.Random, kills: int, *extra: str) -> None:
    """Start `order-export run` and SIGKILL it at a random moment, `kills` times."""
    for _ in range(kills):
        process = subprocess.Popen(
            [sys.executable, "-m", "order_export_tui", "run", *extra],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def test_sigkill_at_random_points_then_a_full_run_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    settings = load_settings(write_settings(tmp_path, {"task": {"batch_size": BATCH}}))
    assert (
        order_export("demo", "--orders", "20000", "--malformed", "3", cwd=tmp_path).returncode == 0
    )
    valid, malformed = asyncio.run(expected_orders(settings))
    rng = random.Random(20261127)

    kill_runs(tmp_path, rng, KILLS)

    final = order_export("run", "--json", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)

    with sqlite3.connect(settings.state_database_path) as db:
        exported = [row[0] for row in db.execute("SELECT order_id FROM exported_order")]
        skipped = {row[0] for row in db.execute("SELECT order_id FROM skipped_order")}
        outcomes = Counter(row[0] for row in db.execute("SELECT outcome FROM run"))
    assert sorted(exported) == sorted(valid)  # every order recorded, once
    assert skipped == malformed
    assert outcomes["running"] == 0  # killed runs were closed as interrupted
    assert outcomes["succeeded"] >= 1
    assert sum(outcomes.values()) <= KILLS + 1  # a process killed while starting made none

    lines = file_path(settings).read_text().splitlines()
    sent = Counter(
        record["key"] for line in lines for record in json.loads(line)["body"]["records"]
    )
    assert set(sent) == valid  # nothing lost at the destination
    repeats = sum(count - 1 for count in sent.values())
    assert repeats <= KILLS * BATCH  # a repeat only for a batch in flight at a kill
    assert report["outcome"] == "succeeded"

    again = order_export("run", "--json", cwd=tmp_path)
    counts = json.loads(again.stdout)["counts"]
    assert counts["new"] == counts["updated"] == 0
    assert counts["unchanged"] == len(valid)

    # Orders the ERP drops: runs killed at any point (while reading, sending or forgetting)
    # forget none of them or all, never an order the ERP still has; the next complete run
    # forgets exactly those.
    gone = sorted(valid)[:: len(valid) // 40][:40]
    with sqlite3.connect(demo_database_path(settings)) as erp:
        erp.executemany("DELETE FROM sales_header WHERE order_no = ?", [(i,) for i in gone])
    erp.close()
    kill_runs(tmp_path, rng, 3)
    with sqlite3.connect(settings.state_database_path) as db:
        left = {row[0] for row in db.execute("SELECT order_id FROM exported_order")}
    db.close()
    assert left in (valid, valid - set(gone))
    assert order_export("run", cwd=tmp_path).returncode == 0
    with sqlite3.connect(settings.state_database_path) as db:
        left = {row[0] for row in db.execute("SELECT order_id FROM exported_order")}
    db.close()
    assert left == valid - set(gone)
