"""Commands given on a standby's machine (interfaces.md §10) are carried out by the leader
through the database and print what they print on the leader: `verify` (§8's answer, lines
and exit codes) and a run's live progress, published by the leader on a NOTIFY channel. On
the standby's machine (folder b) they go through the standby's control socket; on a machine
without a daemon (folder c) straight through the database."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from order_export_tui.engine.events import BatchFinished
from order_export_tui.service import wire
from order_export_tui.service.control import Disconnected, Reattached
from order_export_tui.service.control_client import AttachedControl
from order_export_tui.service.run_relay import decode_run_event
from order_export_tui.settings import load_settings
from tests.support.cli import order_export
from tests.support.daemon_process import DaemonProcess
from tests.support.drift_platforms import FilePlatform
from tests.support.postgres import PostgresServer
from tests.support.state_backends import postgres_state_url
from tests.test_attached_events import until
from tests.test_cluster import daemon_folder
from tests.test_verify_cli import drift_the_file


def leader_and_standby(
    root: Path, url: str, daemons: list[DaemonProcess], **overrides: object
) -> tuple[Path, Path, Path, FilePlatform]:
    """Folders a (the leader's), b (a standby's) and c (no daemon) over one state."""
    platform = FilePlatform(root)
    settings = {**platform.overrides(), "task": {"run_on_schedule": False}, **overrides}
    first = daemon_folder(root, "a", url, **settings)
    second = daemon_folder(root, "b", url, **settings)
    third = daemon_folder(root, "c", url, **settings)
    made = order_export("demo", "--orders", "300", "--malformed", "0", "--days", "20", cwd=first)
    assert made.returncode == 0, made.stderr
    leader = DaemonProcess(first)
    daemons.append(leader)
    leader.wait_started()
    standby = DaemonProcess(second)
    daemons.append(standby)
    standby.wait_for(lambda text: "standby: serving the control socket" in text)
    return first, second, third, platform


def progress_lines(stderr: str) -> list[str]:
    """The live lines of a run (its first line, the first progress line), numbers aside."""
    lines = [
        line
        for line in stderr.splitlines()
        if re.match(r"run \d+: ", line) or " orders processed, " in line
    ]
    return [re.sub(r"\d[\d,]*", "N", line) for line in lines]


def test_verify_on_a_standby_is_carried_out_by_the_leader_with_the_same_answer(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, daemons: list
) -> None:
    url = postgres_state_url(postgres_server, postgres_database)
    first, second, third, platform = leader_and_standby(tmp_path, url, daemons)
    folders = (first, second, third)
    assert order_export("run", cwd=first).returncode == 0

    in_sync = {cwd.name: order_export("verify", "--json", cwd=cwd) for cwd in folders}

    assert [in_sync[name].returncode for name in "abc"] == [0, 0, 0], in_sync["c"].stderr
    assert in_sync["a"].stdout == in_sync["b"].stdout == in_sync["c"].stdout
    assert json.loads(in_sync["b"].stdout)["in_sync"] is True
    gone, extra = drift_the_file(first, platform)

    found = {cwd.name: order_export("verify", "--json", cwd=cwd) for cwd in folders}

    assert [found[name].returncode for name in "abc"] == [1, 1, 1], found["c"].stderr
    assert found["a"].stdout == found["b"].stdout == found["c"].stdout
    assert found["a"].stderr == found["b"].stderr == found["c"].stderr
    drift = json.loads(found["c"].stdout)["drift"]
    assert sorted((item["order_id"], item["kind"]) for item in drift) == sorted(
        [(gone, "missing"), (extra, "extra")]
    )

    repaired = order_export("verify", "--repair", "--json", cwd=third)

    assert repaired.returncode == 0, repaired.stderr
    assert sorted(json.loads(repaired.stdout)["repaired"]) == sorted([gone, extra])
    assert order_export("verify", cwd=second).returncode == 0
    status = json.loads(order_export("status", "--json", cwd=second).stdout)
    assert status["last_run"]["trigger"] == "repair"  # the leader repaired through a run


def test_a_run_forwarded_from_a_standby_prints_the_leaders_live_progress(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, daemons: list
) -> None:
    url = postgres_state_url(postgres_server, postgres_database)
    first, second, third, _ = leader_and_standby(
        tmp_path, url, daemons, **{"task": {"batch_size": 20}}
    )

    runs = {cwd.name: order_export("run", cwd=cwd) for cwd in (second, third, first)}

    assert [runs[name].returncode for name in "abc"] == [0, 0, 0], runs["c"].stderr
    assert progress_lines(runs["b"].stderr) == progress_lines(runs["a"].stderr)
    assert progress_lines(runs["c"].stderr) == progress_lines(runs["a"].stderr)
    assert len(progress_lines(runs["c"].stderr)) == 2  # its first line and a progress line
    assert runs["b"].stderr.startswith("run 1: ")  # the live lines before the summary
    assert runs["c"].stderr.startswith("run 2: ")
    resend = {cwd.name: order_export("resend", "SO-404", cwd=cwd) for cwd in (first, second, third)}
    assert progress_lines(resend["b"].stderr) == progress_lines(resend["a"].stderr)
    assert progress_lines(resend["c"].stderr) == progress_lines(resend["a"].stderr)
    assert resend["b"].stderr.startswith("run 5: resend of 1 order")  # after the leader's 4
    assert resend["c"].stderr.startswith("run 6: resend of 1 order")
    assert (
        resend["a"].stderr.splitlines()[1:]
        == resend["c"].stderr.replace("run 6", "run 4").splitlines()[1:]
    )


@given(st.text(max_size=200))
def test_any_published_text_is_an_event_or_nothing(text: str) -> None:
    event = decode_run_event(text)
    assert event is None or hasattr(event, "run_id")


@given(
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=0, max_value=10**9),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
)
def test_a_published_batch_comes_back_as_it_was(
    run_id: int, processed: int, total: int | None
) -> None:
    event = BatchFinished(run_id, 1, 20, 20, processed, total, {"read": processed})
    assert decode_run_event(json.dumps(wire.encode(event))) == event


async def test_a_client_attached_to_a_standby_follows_it_when_it_takes_over(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, daemons: list
) -> None:
    url = postgres_state_url(postgres_server, postgres_database)
    _, second, _, _ = await asyncio.to_thread(leader_and_standby, tmp_path, url, daemons)
    leader, standby = daemons
    control = AttachedControl(load_settings(second / "settings.toml").control_socket_path)
    events: list[object] = []
    control.subscribe(events.append)
    following = asyncio.create_task(control.serve())
    try:
        await until(lambda: control.connected, "the standby's event stream")
        before = await control.status()
        assert before.process is not None and before.process.pid == standby.pid
        assert {(m.pid, m.role) for m in before.cluster or []} == {
            (leader.pid, "leader"),
            (standby.pid, "standby"),
        }

        leader.signal(signal.SIGKILL)
        await asyncio.to_thread(standby.wait_for, lambda text: "took over" in text, 60)
        await until(
            lambda: any(isinstance(event, Disconnected) for event in events), "the socket closed"
        )
        await until(lambda: any(isinstance(e, Reattached) for e in events), "re-attached", 60)
        after = await control.status()
    finally:
        await control.stop()
        await following

    assert after.process is not None and after.process.pid == standby.pid
    assert [(m.pid, m.role) for m in after.cluster or []] == [(standby.pid, "leader")]
    assert (await asyncio.to_thread(order_export, "run", cwd=second)).returncode == 0
