"""Every daemon sharing a PostgreSQL state takes webhooks (interfaces.md §10): an event
answered 202 by a standby is committed before the answer and delivered by the leader, which
hears of it by NOTIFY (well before its one-minute poll); with the leader SIGKILLed while
events arrive at both, every acknowledged event is delivered."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from order_export_tui.service.intake import signature_for
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, free_port
from tests.support.orders import order
from tests.support.postgres import PostgresServer, PostgresUnavailableError, start_postgres
from tests.support.state_backends import postgres_state_url
from tests.support.webstore import SECRET

ENV = {"ORDER_EXPORT_WEBHOOK_SECRET": SECRET}
NOTIFY_BOUND_SECONDS = 20.0  # far below the delivery worker's 60 s safety poll
DELIVERY_CONCURRENCY = 8  # events a dead leader may have had in flight (sent, unrecorded)


def daemon_folder(root: Path, name: str, url: str) -> tuple[Path, int]:
    folder = root / name
    folder.mkdir()
    port = free_port()
    write_settings(
        folder,
        {
            "storage": {"state_database": url},
            "file": {"path": str(root / "orders.jsonl")},
            "webhook": {"enabled": True, "listen": f"127.0.0.1:{port}"},
        },
    )
    return folder, port


def post(port: int, doc: dict[str, Any]) -> int:
    body = orjson.dumps(doc)
    return httpx.post(
        f"http://127.0.0.1:{port}/webhooks/order-completed",
        content=body,
        headers={"X-Signature": signature_for(SECRET, body)},
        timeout=10,
    ).status_code


def delivered(server: PostgresServer, database: str) -> dict[str, str]:
    with server.connect(database) as db:
        rows = db.execute("SELECT order_id, status FROM realtime_event").fetchall()
    return dict(rows)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cluster(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, daemons: list
) -> tuple[DaemonProcess, int, DaemonProcess, int]:
    url = postgres_state_url(postgres_server, postgres_database)
    (first, first_port), (second, second_port) = (
        daemon_folder(tmp_path, name, url) for name in ("a", "b")
    )
    leader = DaemonProcess(first, ENV)
    daemons.append(leader)
    leader.wait_for(lambda text: "webhook intake listening" in text)
    standby = DaemonProcess(second, ENV)
    daemons.append(standby)
    standby.wait_for(lambda text: "standby:" in text)
    return leader, first_port, standby, second_port


def test_an_event_a_standby_acknowledges_is_delivered_by_the_leader_at_once(
    cluster: tuple[DaemonProcess, int, DaemonProcess, int],
    postgres_server: PostgresServer,
    postgres_database: str,
) -> None:
    leader, _, _, standby_port = cluster

    wait_until(lambda: _answers(standby_port), 30, "the standby's intake")
    assert post(standby_port, order("SO-STANDBY-1")) == 202
    accepted = time.monotonic()
    leader.wait_for(lambda text: "for SO-STANDBY-1) delivered" in text, timeout=60)

    assert time.monotonic() - accepted < NOTIFY_BOUND_SECONDS
    assert delivered(postgres_server, postgres_database) == {"SO-STANDBY-1": "delivered"}


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_events_acknowledged_by_either_daemon_while_the_leader_is_killed_are_all_delivered(
    cluster: tuple[DaemonProcess, int, DaemonProcess, int],
    postgres_server: PostgresServer,
    postgres_database: str,
    tmp_path: Path,
) -> None:
    leader, leader_port, standby, standby_port = cluster
    wait_until(lambda: _answers(standby_port), 30, "the standby's intake")
    acknowledged: list[str] = []
    stop = threading.Event()

    def webstore() -> None:  # a load balancer: the next daemon when one does not answer
        number = 0
        ports = [leader_port, standby_port]
        while not stop.is_set():
            number += 1
            order_id = f"SO-LIVE-{number}"
            for attempt in range(200):
                try:
                    if post(ports[(number + attempt) % 2], order(order_id)) == 202:
                        acknowledged.append(order_id)
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)

    poster = threading.Thread(target=webstore)
    poster.start()
    try:
        wait_until(lambda: len(acknowledged) >= 20, 60, "events before the kill")
        leader.signal(signal.SIGKILL)
        standby.wait_for(lambda text: "took over" in text, timeout=45)
        standby.wait_for(lambda text: "webhook intake listening" in text, timeout=30)
        settled = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= settled + 20, 60, "events after the takeover")
    finally:
        stop.set()
        poster.join(60)

    wait_until(
        lambda: all(
            delivered(postgres_server, postgres_database).get(i) == "delivered"
            for i in acknowledged
        ),
        90,
        "every acknowledged event delivered",
    )
    sent = [
        line_id
        for line in (tmp_path / "orders.jsonl").read_text().splitlines()
        for line_id in _order_ids(line)
    ]
    assert set(acknowledged) <= set(sent)
    repeats = len(sent) - len(set(sent))
    assert repeats <= DELIVERY_CONCURRENCY  # only what the dead leader had in flight


def _order_ids(line: str) -> list[str]:
    """The orders one dry-run line sent: one order in real time, a batch's in a run."""
    body = orjson.loads(line)["body"]
    return [str(record["id"]) for record in body.get("records", [body])]


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, to stop and start under a running daemon."""
    try:
        server = start_postgres()
    except PostgresUnavailableError as reason:
        pytest.skip(str(reason))
    try:
        yield server
    finally:
        server.stop()


def test_a_daemon_whose_database_restarts_stops_leading_refuses_events_then_leads_again(
    own_server: PostgresServer, tmp_path: Path, daemons: list
) -> None:
    database = own_server.create_database()
    folder, port = daemon_folder(tmp_path, "a", postgres_state_url(own_server, database))
    daemon = DaemonProcess(folder, ENV)
    daemons.append(daemon)
    daemon.wait_for(lambda text: "webhook intake listening" in text)
    assert post(port, order("SO-BEFORE")) == 202
    daemon.wait_for(lambda text: "for SO-BEFORE) delivered" in text)
    answers: dict[str, int | str] = {}

    own_server.halt()
    daemon.wait_for(lambda text: "leadership lost" in text, timeout=30)
    for number in range(5):  # nothing is acknowledged that was not recorded
        order_id = f"SO-DOWN-{number}"
        try:
            answers[order_id] = post(port, order(order_id))
        except httpx.HTTPError as error:
            answers[order_id] = type(error).__name__
    daemon.wait_for(lambda text: "waiting for the state database" in text, timeout=30)
    own_server.resume()
    daemon.wait_for(lambda text: text.count("leading the cluster") >= 2, timeout=60)
    daemon.wait_for(lambda text: text.count("webhook intake listening") >= 2, timeout=30)
    assert post(port, order("SO-AFTER")) == 202

    daemon.wait_for(lambda text: "for SO-AFTER) delivered" in text, timeout=60)
    assert [i for i, answer in answers.items() if answer == 202] == []
    assert delivered(own_server, database) == {"SO-BEFORE": "delivered", "SO-AFTER": "delivered"}
    assert daemon.running
