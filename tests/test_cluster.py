"""Daemons sharing one PostgreSQL state (interfaces.md §10): one leads, the others wait as
standbys and one takes over when the leader dies; the run the dead leader left running is
marked failed (interrupted) by the next leader, and `status --json` lists the cluster."""

from __future__ import annotations

import json
import signal
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from order_export_tui.service.export_service import assemble_service
from order_export_tui.service.leadership import continue_schedule
from tests.conftest import write_settings
from tests.support.cli import order_export
from tests.support.daemon_process import DaemonProcess, free_port, start_command
from tests.support.postgres import PostgresServer
from tests.support.state_backends import postgres_state_url

TAKEOVER_SECONDS = 15.0


def daemon_folder(root: Path, name: str, url: str, **overrides: Any) -> Path:
    folder = root / name
    folder.mkdir()
    write_settings(
        folder,
        {
            "storage": {"state_database": url},
            "erp": {"demo_database": str(root / "erp-demo.sqlite")},
            "file": {"path": str(root / "orders.jsonl")},
            **overrides,
        },
    )
    return folder


def status(folder: Path) -> dict[str, Any]:
    result = order_export("status", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_one_daemon_leads_the_other_waits_and_takes_over_when_the_leader_is_killed(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, daemons: list
) -> None:
    url = postgres_state_url(postgres_server, postgres_database)
    first = daemon_folder(tmp_path, "a", url)
    second = daemon_folder(tmp_path, "b", url)
    assert order_export("demo", "--orders", "20", cwd=first).returncode == 0

    leader = DaemonProcess(first)
    daemons.append(leader)
    leader.wait_for(lambda text: "leading the cluster" in text)
    leader.wait_started()
    standby = DaemonProcess(second)
    daemons.append(standby)
    standby.wait_for(lambda text: "standby:" in text)

    def two_members() -> list[dict[str, Any]] | None:
        cluster = status(first).get("cluster") or []
        return cluster if len(cluster) == 2 else None

    cluster = wait_until(two_members, 30, "both daemons in the cluster")
    roles = {member["pid"]: member["role"] for member in cluster}
    assert roles == {leader.pid: "leader", standby.pid: "standby"}
    assert status(first)["process"]["role"] == "daemon"
    assert f"{leader.pid}" in standby.output  # the standby names who leads
    shown = order_export("status", cwd=second).stdout
    assert f"cluster: {socket.gethostname()} pid {leader.pid}, leader since " in shown
    assert f"cluster: {socket.gethostname()} pid {standby.pid}, standby since " in shown

    leader.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    standby.wait_for(lambda text: "took over" in text, timeout=TAKEOVER_SECONDS + 30)
    took = time.monotonic() - killed_at
    standby.wait_started()

    assert took <= TAKEOVER_SECONDS
    cluster = status(second)["cluster"]
    assert [(m["pid"], m["role"]) for m in cluster] == [(standby.pid, "leader")]
    run = order_export("run", cwd=second)
    assert run.returncode == 0, run.stderr


def test_the_run_a_killed_leader_left_running_is_failed_by_the_next_leader_who_sends_the_rest(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, daemons: list
) -> None:
    url = postgres_state_url(postgres_server, postgres_database)
    task = {"task": {"batch_size": 5, "run_on_schedule": False}}
    first = daemon_folder(tmp_path, "a", url, **task)
    second = daemon_folder(tmp_path, "b", url, **task)
    assert order_export("demo", "--orders", "4000", cwd=first).returncode == 0
    leader = DaemonProcess(first)
    daemons.append(leader)
    leader.wait_started()
    standby = DaemonProcess(second)
    daemons.append(standby)
    standby.wait_for(lambda text: "standby:" in text)

    follower = start_command("run", cwd=first)  # the leader's run, followed from its folder
    leader.wait_for(lambda text: "orders processed" in text, timeout=60)
    leader.signal(signal.SIGKILL)
    assert follower.wait(60) != 0  # it saw its daemon go
    standby.wait_for(lambda text: "took over" in text, timeout=TAKEOVER_SECONDS + 30)
    standby.wait_started()

    with postgres_server.connect(postgres_database) as db:
        rows = db.execute("SELECT run_id, outcome, error FROM run ORDER BY run_id").fetchall()
    assert rows[0][1] == "failed"
    assert rows[0][2].startswith("interrupted")

    again = order_export("run", cwd=second, timeout=600)
    assert again.returncode == 0, again.stderr
    with postgres_server.connect(postgres_database) as db:
        (exported,) = db.execute("SELECT count(*) FROM exported_order").fetchone()
    last = status(second)["last_run"]
    assert last["outcome"] == "succeeded"
    counts = last["counts"]
    assert exported + counts["skipped"] == counts["read"]  # invalid demo orders are skipped


@pytest.mark.parametrize(
    ("schedule", "last_started", "due"),
    [
        ({"run_interval_minutes": 60}, timedelta(hours=-2), timedelta(0)),  # missed: now
        ({"run_interval_minutes": 60}, timedelta(minutes=-10), timedelta(minutes=50)),
        ({"run_interval_minutes": 0, "run_time": "08:00"}, timedelta(days=-1), timedelta(0)),
    ],
)
def test_a_new_leader_continues_the_schedule_from_the_last_run_any_daemon_started(
    make_settings: Any,
    state_factory: Any,
    schedule: dict[str, Any],
    last_started: timedelta,
    due: timedelta,
) -> None:
    now = datetime(2026, 11, 27, 9, 0).astimezone()
    settings = make_settings(task={"run_on_schedule": True, **schedule})
    state = state_factory(settings)
    state.start_run(trigger="schedule", started_at=now + last_started)
    service, _ = assemble_service(settings, state, realtime=False)
    before = service.scheduler.jobs[0].next_run

    continue_schedule(service, state, now)

    expected = (now + due).replace(tzinfo=None)
    assert service.scheduler.jobs[0].next_run == min(expected, before)


def test_commands_given_on_a_standby_are_carried_out_by_the_leader_with_the_same_answers(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, daemons: list
) -> None:
    url = postgres_state_url(postgres_server, postgres_database)
    first = daemon_folder(tmp_path, "a", url)
    second = daemon_folder(tmp_path, "b", url)
    assert order_export("demo", "--orders", "20", cwd=first).returncode == 0
    leader = DaemonProcess(first)
    daemons.append(leader)
    leader.wait_started()
    standby = DaemonProcess(second)
    daemons.append(standby)
    standby.wait_for(lambda text: "standby:" in text)

    on_standby = order_export("run", "--json", cwd=second)
    on_leader = order_export("run", "--json", cwd=first)

    assert (on_standby.returncode, on_leader.returncode) == (0, 0), on_standby.stderr
    report = json.loads(on_standby.stdout)
    assert report["outcome"] == "succeeded"
    assert report["run_id"] == 1
    assert "run 1 started" in leader.output  # the leader ran it
    some_id = "SO-404-NOT-THERE"
    resend = {cwd.name: order_export("resend", some_id, cwd=cwd) for cwd in (first, second)}
    assert resend["a"].returncode == resend["b"].returncode == 1
    assert _last_lines(resend["a"].stderr) == _last_lines(resend["b"].stderr)
    cancel = {cwd.name: order_export("cancel", cwd=cwd) for cwd in (first, second)}
    assert cancel["a"].returncode == cancel["b"].returncode == 0
    assert cancel["a"].stderr == cancel["b"].stderr


def _last_lines(text: str) -> list[str]:
    """What a resend ends with (each id's outcome and the summary), run numbers aside."""
    import re

    return [re.sub(r"\brun \d+", "run N", line) for line in text.strip().splitlines()[-2:]]


def test_check_connect_reaches_the_state_and_says_who_leads_it(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, daemons: list
) -> None:
    url = postgres_state_url(postgres_server, postgres_database)
    folder = daemon_folder(tmp_path, "a", url)
    assert order_export("demo", "--orders", "5", cwd=folder).returncode == 0
    shown = f"state: postgresql://{postgres_server.host}:{postgres_server.port}/{postgres_database}"

    before = order_export("check", "--connect", cwd=folder)
    leader = DaemonProcess(folder)
    daemons.append(leader)
    leader.wait_started()
    during = order_export("check", "--connect", cwd=folder)

    assert before.returncode == during.returncode == 0, before.stderr
    assert f"{shown}, no daemon leads it; 0 standby daemon(s)" in before.stderr
    assert f"{shown}, led by " in during.stderr
    assert f" pid {leader.pid}, since " in during.stderr
    assert "postgres@" not in before.stderr + during.stderr  # no user-info shown


def test_check_connect_names_an_unreachable_state_by_its_key(tmp_path: Path) -> None:
    folder = daemon_folder(tmp_path, "a", f"postgresql://nobody@127.0.0.1:{free_port()}/state")
    assert order_export("demo", "--orders", "5", cwd=folder).returncode == 0

    result = order_export("check", "--connect", cwd=folder)

    assert result.returncode == 2
    assert "storage.state_database: postgresql://127.0.0.1:" in result.stderr
    assert "nobody" not in result.stderr
