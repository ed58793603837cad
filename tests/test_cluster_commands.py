"""Commands given on a standby's machine (interfaces.md §10) are carried out by the leader
through the database and print what they print on the leader: `verify` (§8's answer, lines
and exit codes) and a run's live progress, published by the leader on a NOTIFY channel."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from order_export_tui.engine.events import BatchFinished
from order_export_tui.service import wire
from order_export_tui.service.run_relay import decode_run_event
from tests.support.cli import order_export
from tests.support.daemon_process import DaemonProcess
from tests.support.drift_platforms import FilePlatform
from tests.support.postgres import PostgresServer
from tests.support.state_backends import postgres_state_url
from tests.test_cluster import daemon_folder
from tests.test_verify_cli import drift_the_file


def leader_and_standby(
    root: Path, url: str, daemons: list[DaemonProcess], **overrides: object
) -> tuple[Path, Path, FilePlatform]:
    platform = FilePlatform(root)
    settings = {**platform.overrides(), "task": {"run_on_schedule": False}, **overrides}
    first = daemon_folder(root, "a", url, **settings)
    second = daemon_folder(root, "b", url, **settings)
    made = order_export("demo", "--orders", "300", "--malformed", "0", "--days", "20", cwd=first)
    assert made.returncode == 0, made.stderr
    leader = DaemonProcess(first)
    daemons.append(leader)
    leader.wait_started()
    standby = DaemonProcess(second)
    daemons.append(standby)
    standby.wait_for(lambda text: "standby:" in text)
    return first, second, platform


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
    first, second, platform = leader_and_standby(tmp_path, url, daemons)
    assert order_export("run", cwd=first).returncode == 0

    in_sync = {cwd.name: order_export("verify", "--json", cwd=cwd) for cwd in (first, second)}

    assert in_sync["a"].returncode == in_sync["b"].returncode == 0, in_sync["b"].stderr
    assert in_sync["a"].stdout == in_sync["b"].stdout
    assert json.loads(in_sync["b"].stdout)["in_sync"] is True
    gone, extra = drift_the_file(first, platform)

    found = {cwd.name: order_export("verify", "--json", cwd=cwd) for cwd in (first, second)}

    assert found["a"].returncode == found["b"].returncode == 1, found["b"].stderr
    assert found["a"].stdout == found["b"].stdout
    assert found["a"].stderr == found["b"].stderr
    drift = json.loads(found["b"].stdout)["drift"]
    assert sorted((item["order_id"], item["kind"]) for item in drift) == sorted(
        [(gone, "missing"), (extra, "extra")]
    )

    repaired = order_export("verify", "--repair", "--json", cwd=second)

    assert repaired.returncode == 0, repaired.stderr
    assert sorted(json.loads(repaired.stdout)["repaired"]) == sorted([gone, extra])
    assert order_export("verify", cwd=first).returncode == 0
    status = json.loads(order_export("status", "--json", cwd=second).stdout)
    assert status["last_run"]["trigger"] == "repair"  # the leader repaired through a run


def test_a_run_forwarded_from_a_standby_prints_the_leaders_live_progress(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path, daemons: list
) -> None:
    url = postgres_state_url(postgres_server, postgres_database)
    first, second, _ = leader_and_standby(tmp_path, url, daemons, **{"task": {"batch_size": 20}})

    on_standby = order_export("run", cwd=second)
    on_leader = order_export("run", cwd=first)

    assert (on_standby.returncode, on_leader.returncode) == (0, 0), on_standby.stderr
    assert progress_lines(on_standby.stderr) == progress_lines(on_leader.stderr)
    assert len(progress_lines(on_standby.stderr)) == 2  # its first line and a progress line
    assert on_standby.stderr.startswith("run 1: ")  # the live lines before the summary
    resend = {cwd.name: order_export("resend", "SO-404", cwd=cwd) for cwd in (first, second)}
    assert progress_lines(resend["b"].stderr) == progress_lines(resend["a"].stderr)
    assert resend["b"].stderr.startswith("run 4: resend of 1 order")  # after the leader's 3


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
