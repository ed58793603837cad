"""The state on PostgreSQL beside SQLite, and takeovers in a cluster of two daemons
(interfaces.md §10; issue 24).

    python benchmarks/standby.py                       # 100,000 orders, 10 leader kills
    python benchmarks/standby.py --orders 20000 --kills 3

A PostgreSQL server is started for the run (as the tests start theirs: tests/support/
postgres.py; it needs Debian's postgresql package). Figures printed, measured in the same run:
  - the engine (demo ERP -> file destination) with its state in a SQLite file and in
    PostgreSQL: first run (every order new) and second run (every order unchanged), orders/s;
    goal: PostgreSQL >= 0.5x SQLite;
  - takeover time over N leader kills (SIGKILL of the leader -> the standby leads, and ->
    its intake listens): median and max; goals: median <= 5 s, max <= 15 s;
  - webhook events/s accepted by the two intakes (a load balancer retrying the other daemon)
    during the takeovers, beside the rate outside them; every event acknowledged is checked
    delivered at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
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

from order_export_tui.service.intake import signature_for  # noqa: E402
from tests.support.orders import order  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.postgres import PostgresServer, start_postgres  # noqa: E402

SECRET = "webhook-secret-for-the-benchmark"


def settings_file(folder: Path, state: str, **more: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "task": {
            "run_on_schedule": False,
            "run_interval_minutes": 0,
            "batch_size": 100,
            "max_days_to_export": 30,
            "max_items_to_skip": 1000,
            "max_archived_log_files": 5,
        },
        "erp": {"source": "demo", "demo_database": str(folder.parent / "erp.sqlite")},
        "destination": {"app": "file"},
        "file": {"path": "orders.jsonl"},
        "storage": {"state_database": state, "logs_dir": "logs"},
        **more,
    }
    path = folder / "settings.toml"
    path.write_bytes(tomli_w.dumps(settings).encode())
    return path


def state_url(server: PostgresServer, database: str) -> str:
    return f"postgresql://postgres@{server.host}:{server.port}/{database}"


def in_child(*args: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "engine.py"), "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def engine_rates(server: PostgresServer, orders: int, root: Path) -> None:
    sqlite = settings_file(root / "sqlite", "state.sqlite")
    postgres = settings_file(root / "postgres", state_url(server, server.create_database()))
    generated = in_child("generate", str(sqlite), str(orders))
    built = generated["seconds"]
    print(f"\nengine: {orders:,} orders, file destination (demo ERP built in {built:.1f}s)")
    rates: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
    for _ in ("first", "second"):  # interleaved, so both see the same machine load
        for name, path in (("SQLite", sqlite), ("PostgreSQL", postgres)):
            figures = in_child("export", str(path))
            rates[name].append(figures["orders"] / figures["seconds"])
    for index, kind in enumerate(("first run, all new   ", "second run, unchanged")):
        lite, pg = rates["SQLite"][index], rates["PostgreSQL"][index]
        print(
            f"  {kind}  SQLite {lite:>8,.0f} orders/s   PostgreSQL {pg:>8,.0f} orders/s"
            f"   ({pg / lite:.2f}x SQLite; goal >= 0.5x)"
        )


class Daemon:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / f"daemon-{time.monotonic_ns()}.log"
        self._out = open(self.log, "w")  # noqa: SIM115 - closed in kill()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "order_export_tui", "daemon"],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(REPO), "ORDER_EXPORT_WEBHOOK_SECRET": SECRET},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def says(self, text: str) -> bool:
        return text in self.log.read_text()

    def wait_for(self, text: str, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.says(text):
                return time.monotonic()
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.02)
        raise RuntimeError(f"no {text!r} within {timeout} s:\n{self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._out.close()


class Webstore(threading.Thread):
    """Posts order events without pause, to one daemon then the other; a refused or failed
    post is sent to the other daemon (a load balancer's retry)."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__(daemon=True)
        self.ports = ports
        self.accepted: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        number = 0
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                number += 1
                doc = order(f"SO-BENCH-{number}")
                body = orjson.dumps(doc)
                headers = {"X-Signature": signature_for(SECRET, body)}
                for attempt in range(400):
                    port = self.ports[(number + attempt) % len(self.ports)]
                    try:
                        answer = client.post(
                            f"http://127.0.0.1:{port}/webhooks/order-completed",
                            content=body,
                            headers=headers,
                        )
                        if answer.status_code == 202:
                            self.accepted.append((time.monotonic(), doc["order_id"]))
                            break
                    except httpx.HTTPError:
                        pass
                    if self.stop.is_set():
                        return


def takeovers(server: PostgresServer, kills: int, root: Path) -> None:
    url = state_url(server, server.create_database())
    ports = [free_port(), free_port()]
    folders = [
        settings_file(
            root / name,
            url,
            webhook={"enabled": True, "listen": f"127.0.0.1:{port}"},
        ).parent
        for name, port in zip(("a", "b"), ports, strict=True)
    ]
    daemons = [Daemon(folders[0])]
    daemons[0].wait_for("webhook intake listening")
    daemons.append(Daemon(folders[1]))
    daemons[1].wait_for("standby:")
    webstore = Webstore(ports)
    webstore.start()
    leads, windows, to_lead, to_listen = 0, [], [], []
    moments = random.Random(24)
    try:
        time.sleep(2)
        for _ in range(kills):
            leader, standby = daemons[leads], daemons[1 - leads]
            killed_at = time.monotonic()
            leader.kill()
            led_at = standby.wait_for("took over")
            listening_at = _listening_after_takeover(standby)
            to_lead.append(led_at - killed_at)
            to_listen.append(listening_at - killed_at)
            windows.append((killed_at, listening_at))
            daemons[leads] = Daemon(leader.folder)  # back, as a standby
            daemons[leads].wait_for("standby:")
            leads = 1 - leads
            # At a random moment of the standby's 2-second cycle, not in step with it.
            time.sleep(moments.uniform(2.0, 6.0))
    finally:
        webstore.stop.set()
        webstore.join(30)
    print(f"\ntakeovers: {kills} leader kills (SIGKILL), two daemons on one PostgreSQL")
    print(
        f"  standby leads after     median {statistics.median(to_lead):5.2f} s"
        f"   max {max(to_lead):5.2f} s   (goals: median <= 5 s, max <= 15 s)"
    )
    print(
        f"  its intake listens after median {statistics.median(to_listen):5.2f} s"
        f"   max {max(to_listen):5.2f} s"
    )
    inside = sum(1 for at, _ in webstore.accepted if any(a <= at <= b for a, b in windows))
    window_seconds = sum(b - a for a, b in windows)
    first, last = webstore.accepted[0][0], webstore.accepted[-1][0]
    outside_seconds = (last - first) - window_seconds
    print(
        f"  events accepted during takeovers {inside / window_seconds:7.1f} /s"
        f"   outside them {(len(webstore.accepted) - inside) / outside_seconds:7.1f} /s"
        f"   ({len(webstore.accepted):,} acknowledged in all)"
    )
    acknowledged = {order_id for _, order_id in webstore.accepted}
    deadline = time.monotonic() + 300
    with server.connect(url.rsplit("/", 1)[1]) as db:
        while time.monotonic() < deadline:
            rows = db.execute("SELECT order_id, status FROM realtime_event").fetchall()
            done = {i for i, status in rows if status == "delivered"}
            if acknowledged <= done:
                break
            time.sleep(0.5)
    missing = acknowledged - done
    print(f"  acknowledged but not delivered: {len(missing)}")
    for daemon in daemons:
        daemon.kill()


def _listening_after_takeover(daemon: Daemon) -> float:
    """When the new leader's intake listens (its line after its "took over" line)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = daemon.log.read_text()
        if text.rfind("webhook intake listening") > text.rfind("took over") >= 0:
            return time.monotonic()
        time.sleep(0.02)
    raise RuntimeError("the new leader's intake did not listen within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    server = start_postgres()
    try:
        with tempfile.TemporaryDirectory(prefix="order-export-standby-") as folder:
            if args.orders:
                engine_rates(server, args.orders, Path(folder) / "engine")
            if args.kills:
                takeovers(server, args.kills, Path(folder) / "cluster")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
