"""A hostile environment: a broken state database, wrong kinds of files, a taken port, a full
disk, an open umask. Real processes and real files; each gets a clear message, no traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies

from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import load_settings, validate
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import (
    INTERRUPTED_ERROR,
    StateDatabaseCorruptError,
    StateLock,
    StateStore,
    StateUnusableError,
    StoragePathError,
)
from tests.conftest import TEST_SETTINGS, write_settings
from tests.support.cli import REPO
from tests.support.cli import order_export as _order_export


def order_export(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The command, on a terminal wide enough that no message is wrapped."""
    return _order_export(*args, cwd=cwd, env={"COLUMNS": "500", **(env or {})}, timeout=timeout)


def prepared(folder: Path, overrides: dict[str, object] | None = None) -> Path:
    """Settings, a demo ERP and one finished run: a real state database in data/."""
    write_settings(folder, overrides)
    assert order_export("demo", "--orders", "40", "--malformed", "0", cwd=folder).returncode == 0
    first = order_export("run", cwd=folder)
    assert first.returncode == 0, first.stderr
    return folder / "data" / "state.sqlite"


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "sqlite3." not in result.stderr, result.stderr


def one_line(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines for the terminal


# --- item 6: a broken state database ---------------------------------------------------------


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(20000))


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _broken_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0:16] = b"not-sqlite-here!"
    path.write_bytes(bytes(data))


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (_garbage, "not an SQLite database"),
    "truncated": (_truncated, "truncated"),
    "broken header": (_broken_header, "not an SQLite database"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
@pytest.mark.parametrize("command", ["run", "daemon"])
def test_a_broken_state_database_is_named_left_untouched_and_exits_1(
    tmp_path: Path, breakage: str, command: str
) -> None:
    database = prepared(tmp_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    damage, expected = BREAKAGES[breakage]
    damage(database)
    before = database.read_bytes()

    result = order_export(command, cwd=tmp_path, timeout=60)

    no_traceback(result)
    assert result.returncode == 1
    message = one_line(result.stderr)
    assert f"Not started: {database}" in message
    assert expected in message
    assert "Restore it from a backup" in message
    assert database.read_bytes() == before  # never overwritten, never "repaired"


def test_a_state_database_that_is_a_folder_is_a_settings_error(tmp_path: Path) -> None:
    write_settings(tmp_path)
    (tmp_path / "data" / "state.sqlite").mkdir(parents=True)

    result = order_export("run", cwd=tmp_path)

    no_traceback(result)
    assert result.returncode == 2
    assert "storage.state_database: names a folder" in one_line(result.stderr)


@pytest.mark.parametrize("command", ["run", "daemon"])
def test_a_lock_file_that_is_a_folder_is_named(tmp_path: Path, command: str) -> None:
    database = prepared(tmp_path)
    lock = Path(f"{database}.lock")
    lock.unlink()
    lock.mkdir()

    result = order_export(command, cwd=tmp_path, timeout=60)

    no_traceback(result)
    assert result.returncode == 2
    assert f"{lock}: the lock file is a folder" in one_line(result.stderr)


@pytest.mark.parametrize("command", ["run", "daemon"])
def test_a_data_folder_that_is_a_file_is_named(tmp_path: Path, command: str) -> None:
    write_settings(tmp_path)
    (tmp_path / "data").write_text("not a folder")

    result = order_export(command, cwd=tmp_path, timeout=60)

    no_traceback(result)
    assert result.returncode == 2
    assert f"{tmp_path / 'data'}: is a file where a folder is needed" in one_line(result.stderr)
    assert (tmp_path / "data").read_text() == "not a folder"


def test_demo_with_a_data_folder_that_is_a_file_names_it(tmp_path: Path) -> None:
    write_settings(tmp_path)
    (tmp_path / "data").write_text("not a folder")

    result = order_export("demo", "--orders", "5", cwd=tmp_path)

    no_traceback(result)
    assert result.returncode == 2
    assert f"The demo ERP was not created: {tmp_path / 'data'}" in result.stderr


def test_the_typed_errors_come_from_the_state_layer(tmp_path: Path) -> None:
    database = tmp_path / "state.sqlite"
    database.write_bytes(b"SQLite format 3\x00" + os.urandom(5000))  # a header, then noise
    with pytest.raises(StateDatabaseCorruptError):
        StateStore(database)
    folder = tmp_path / "lock-as-folder"
    Path(f"{folder / 'state.sqlite'}.lock").mkdir(parents=True)
    with pytest.raises(StoragePathError):
        StateLock(folder / "state.sqlite", role="run").acquire()


# --- item 7: storage paths that cannot work ---------------------------------------------------


def _problems(tmp_path: Path, section: str, key: str, value: str) -> list[str]:
    data = {**TEST_SETTINGS, section: {**TEST_SETTINGS.get(section, {}), key: value}}
    settings_file = tmp_path / "settings.toml"
    return validate(data, settings_file)[1]


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("storage", "state_database"),
        ("storage", "logs_dir"),
        ("file", "path"),
        ("erp", "demo_database"),
    ],
)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("data/st\x00ate.sqlite", "must not contain a NUL character"),
        ("x" * 300, "name over 255 bytes"),
        ("/".join(["abcdefgh"] * 600), "is too long"),
        ("/proc/self/state.sqlite", "must not be under /proc"),
        ("/etc/passwd", "must not be under /etc"),
        ("/usr/lib/order-export/state.sqlite", "must not be under /usr"),
        ("settings.toml", "is the settings file itself"),
    ],
)
def test_a_storage_path_that_cannot_work_is_a_settings_error_naming_the_key(
    tmp_path: Path, section: str, key: str, value: str, expected: str
) -> None:
    (tmp_path / "settings.toml").write_text("")
    problems = _problems(tmp_path, section, key, value)
    assert any(p.startswith(f"{section}.{key}: ") and expected in p for p in problems), problems


@pytest.mark.parametrize("value", [".", "..", "data/", ""])
def test_a_file_key_that_names_a_folder_is_refused(tmp_path: Path, value: str) -> None:
    problems = _problems(tmp_path, "storage", "state_database", value)
    assert any(p.startswith("storage.state_database: ") for p in problems), problems


def test_two_keys_naming_the_same_file_are_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "file", "path", "data/state.sqlite")
    assert any("file.path: is the same path as storage.state_database" in p for p in problems)


def test_run_with_a_nul_in_a_path_exits_2_naming_the_key(tmp_path: Path) -> None:
    write_settings(tmp_path, {"storage": {"state_database": "data/a\x00b"}})
    result = order_export("run", cwd=tmp_path)
    no_traceback(result)
    assert result.returncode == 2
    assert "storage.state_database: must not contain a NUL character" in result.stderr


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=strategies.text(min_size=0, max_size=400))
def test_any_storage_path_validates_without_an_exception(tmp_path: Path, value: str) -> None:
    """Whatever the operator types as a path: a list of problems (each naming a key), never a
    crash; a value that passes can be created."""
    problems = _problems(tmp_path, "storage", "state_database", value)
    assert all(": " in problem for problem in problems)
    if not problems:
        resolved = (tmp_path / value) if not value.startswith(("/", "~")) else None
        if resolved is not None:
            assert "\x00" not in value
            assert resolved.name not in ("", ".", "..")


# --- item 9: the webhook port is taken ----------------------------------------------------------


def test_a_daemon_whose_webhook_port_is_taken_says_not_started_and_exits_1(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        write_settings(tmp_path, {"webhook": {"enabled": True, "listen": f"127.0.0.1:{port}"}})
        result = order_export(
            "daemon",
            cwd=tmp_path,
            env={"ORDER_EXPORT_WEBHOOK_SECRET": "a-webhook-secret-of-32-bytes-ok"},
            timeout=60,
        )

    no_traceback(result)
    assert "SystemExit" not in result.stderr
    assert result.returncode == 1
    assert f"Not started: the webhook intake cannot listen on 127.0.0.1:{port}" in one_line(
        result.stderr
    )
    assert "webhook.listen" in result.stderr


# --- item 11: the real error, not one from the cleanup ----------------------------------------


async def test_a_failure_recording_the_log_file_shows_the_real_error(
    tmp_path: Path, make_settings
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=20, seed=1, days=5, malformed=0)
    state = StateStore(settings.state_database_path)
    # A real SQLite failure in exactly that statement: the database refuses the update.
    with sqlite3.connect(settings.state_database_path) as db:
        db.execute(
            "CREATE TRIGGER refuse_log_file BEFORE UPDATE OF log_file ON run"
            " BEGIN SELECT RAISE(ABORT, 'disk I/O error while recording the log file'); END"
        )
    try:
        engine = ExportEngine(
            settings, state, source_factory=build_source, destination_factory=build_destination
        )
        report = await engine.run()
    finally:
        state.close()

    assert report.outcome == "failed"
    assert report.error is not None
    assert "disk I/O error while recording the log file" in report.error
    assert "list.remove" not in report.error
    assert str(settings.state_database_path) in report.error


# --- item 12: owner-only files, whatever the umask -------------------------------------------


def test_files_with_customer_data_are_owner_only_even_with_umask_0(tmp_path: Path) -> None:
    write_settings(tmp_path, {"storage": {"state_database": "private/db/state.sqlite"}})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = (
        "import os, sys; os.umask(0); from order_export_tui.cli import main;"
        " sys.exit(main(sys.argv[1:]))"
    )
    for args in (["demo", "--orders", "30", "--malformed", "0"], ["run"]):
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    # -wal and -shm exist while the state database is open: look at them under the daemon.
    database = tmp_path / "private" / "db" / "state.sqlite"
    daemon = subprocess.Popen(
        [sys.executable, "-c", script, "daemon"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        socket_path = load_settings(tmp_path / "settings.toml").control_socket_path
        wanted = [Path(f"{database}-wal"), Path(f"{database}-shm"), socket_path]
        while not all(path.exists() for path in wanted):  # the socket: it is fully started
            assert daemon.poll() is None, "the daemon stopped"
            assert time.monotonic() < deadline, "no -wal and -shm"
            time.sleep(0.05)
        files = [
            database,
            Path(f"{database}.lock"),
            Path(f"{database}-wal"),
            Path(f"{database}-shm"),
            *sorted((tmp_path / "logs").glob("run-*.log")),
            tmp_path / "exports" / "orders.jsonl",
        ]
        modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in files}
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    folders = [
        tmp_path / "private",
        tmp_path / "private" / "db",
        tmp_path / "logs",
        tmp_path / "exports",
    ]
    folder_modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in folders}

    assert len(files) >= 6
    assert set(modes.values()) == {0o600}, {k: oct(v) for k, v in modes.items()}
    assert set(folder_modes.values()) == {0o700}, {k: oct(v) for k, v in folder_modes.items()}


# --- item 8: a full disk while the run's end is recorded ------------------------------------


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


# Runs inside its own mount namespace with the state database on a small tmpfs. When the last
# batch is done it fills that tmpfs to the last byte, so the run's end meets a real ENOSPC.
_DISK_FULL_RUN = textwrap.dedent(
    """
    import asyncio, errno, json, os, sys
    from pathlib import Path
    from order_export_tui.engine.events import BatchFinished
    from order_export_tui.engine.runner import ExportEngine
    from order_export_tui.run_display import print_summary
    from order_export_tui.service.wiring import build_destination, build_source
    from order_export_tui.settings import load_settings
    from order_export_tui.state import StateStore
    from rich.console import Console

    settings = load_settings(sys.argv[1])
    mount = Path(sys.argv[2])

    def fill(event):
        if isinstance(event, BatchFinished) and event.processed == event.total:
            fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            size = 65536
            while size:
                try:
                    os.write(fd, b"x" * size)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    size //= 2
            os.close(fd)

    async def main():
        state = StateStore(settings.state_database_path)
        engine = ExportEngine(
            settings, state, source_factory=build_source, destination_factory=build_destination
        )
        engine.subscribe(fill)
        report = await engine.run()
        print_summary(Console(stderr=True), report)
        print(json.dumps(report.as_json()))
        state.close()

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="no user namespace to mount a small tmpfs")
def test_a_full_disk_at_the_end_of_a_run_is_a_clear_failure_and_the_next_start_closes_it(
    tmp_path: Path,
) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    settings_path = write_settings(
        tmp_path,
        {"storage": {"state_database": "small-disk/state.sqlite"}, "task": {"batch_size": 10}},
    )
    assert order_export("demo", "--orders", "30", "--malformed", "0", cwd=tmp_path).returncode == 0
    script = tmp_path / "disk_full_run.py"
    script.write_text(_DISK_FULL_RUN)
    done = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            f'mount -t tmpfs -o size=2m tmpfs "{mount}" && "{sys.executable}" "{script}"'
            f' "{settings_path}" "{mount}"; code=$?; mkdir -p "{tmp_path}/kept"'
            f' && cp -a "{mount}/." "{tmp_path}/kept/"; exit $code',
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "failed"
    assert "the end of this run could not be recorded" in report["error"]
    assert "database or disk is full" in report["error"]
    assert "failed" in done.stderr  # the summary was printed

    # The tmpfs is gone with its namespace; what it held was left as the full disk left it.
    # Reopen a copy taken by the namespace's last command (`cp` after the run exits).
    settings = load_settings(settings_path)
    kept = tmp_path / "kept" / "state.sqlite"
    if not kept.exists():
        pytest.skip("the copy of the small disk was not taken")
    with sqlite3.connect(kept) as db:
        assert db.execute("SELECT outcome FROM run").fetchall() == [("running",)]
    state = StateStore(kept)
    try:
        ExportEngine(
            settings, state, source_factory=build_source, destination_factory=build_destination
        )
        ((outcome, error),) = [(r.outcome, r.error) for r in state.recent_runs()]
    finally:
        state.close()
    assert outcome == "failed"
    assert error == INTERRUPTED_ERROR


# --- a state database damaged anywhere: a typed refusal or a working store, nothing else -------


def _sample_database(folder: Path) -> bytes:
    database = folder / "sample.sqlite"
    store = StateStore(database)
    for run in range(3):
        from datetime import datetime

        stamp = datetime(2026, 11, 27, 10, run, tzinfo=UTC)
        run_id = store.start_run(trigger="manual", started_at=stamp)
        store.finish_run(
            run_id,
            finished_at=stamp,
            outcome="succeeded",
            counts=dict.fromkeys(("read", "new", "updated", "unchanged", "retried", "skipped"), 1),
            error=None,
        )
    store.close()
    return database.read_bytes()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=strategies.data())
def test_a_damaged_state_database_is_refused_untouched_or_opens(
    tmp_path_factory: pytest.TempPathFactory, data: strategies.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("damaged")
    good = _sample_database(folder)
    damage = data.draw(strategies.sampled_from(["truncate", "header", "garbage"]))
    if damage == "truncate":
        damaged = good[: data.draw(strategies.integers(1, len(good) - 1))]
    elif damage == "header":
        spot = data.draw(strategies.integers(0, 99))
        value = data.draw(strategies.integers(0, 255).filter(lambda b: b != good[spot]))
        damaged = good[:spot] + bytes([value]) + good[spot + 1 :]
    else:
        damaged = data.draw(strategies.binary(min_size=1, max_size=5000))
    database = folder / "state.sqlite"
    database.write_bytes(damaged)
    try:
        store = StateStore(database)
    except StateUnusableError as error:
        assert str(database) in str(error)
        assert database.read_bytes() == damaged  # refused and left as it was
    else:
        store.close()
