"""Commands that delegate to a running daemon need nothing of the daemon's: neither the secrets
it holds (under systemd they live in its own 0600 environment file) nor a settings file that
validates (the daemon keeps running on its last good settings)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from order_export_tui.settings import load_settings
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, free_port, order_export, start_command
from tests.support.file_output import file_records

SECRET_ENV = "OE_TEST_DAEMON_ONLY_SECRET"
SECRET = "a-webhook-secret-only-the-daemon-has"


def daemon_with_a_secret(tmp_path: Path, daemons: list[DaemonProcess]) -> DaemonProcess:
    write_settings(
        tmp_path,
        {
            "webhook": {
                "enabled": True,
                "listen": f"127.0.0.1:{free_port()}",
                "secret_env": SECRET_ENV,
            }
        },
    )
    made = order_export("demo", "--orders", "40", "--malformed", "0", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    daemon = DaemonProcess(tmp_path, env={SECRET_ENV: SECRET})
    daemons.append(daemon)
    return daemon.wait_started()


def exported_ids(folder: Path) -> list[str]:
    return [record["key"] for record in file_records(load_settings(folder / "settings.toml"))]


def test_run_and_resend_reach_the_daemon_without_its_secret(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    daemon = daemon_with_a_secret(tmp_path, daemons)

    ran = order_export("run", "--json", cwd=tmp_path)  # SECRET_ENV is not in this shell

    assert ran.returncode == 0, ran.stderr
    assert SECRET_ENV not in ran.stderr
    assert json.loads(ran.stdout)["outcome"] == "succeeded"
    first = exported_ids(tmp_path)[0]
    resent = order_export("resend", first, cwd=tmp_path)
    assert resent.returncode == 0, resent.stderr
    assert exported_ids(tmp_path).count(first) == 2
    assert daemon.stop() == 0


def test_without_a_daemon_a_missing_secret_still_refuses_the_run(tmp_path: Path) -> None:
    write_settings(tmp_path, {"webhook": {"enabled": True, "secret_env": SECRET_ENV}})

    ran = order_export("run", cwd=tmp_path)

    assert ran.returncode == 2
    assert f"webhook.secret_env: environment variable {SECRET_ENV} is not set" in ran.stderr


def break_the_settings(folder: Path) -> None:
    path = folder / "settings.toml"
    path.write_text(path.read_text().replace("batch_size = 50", "batch_size = 0"))


def test_a_broken_settings_file_does_not_lock_operators_out_of_the_daemon(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    daemon = daemon_with_a_secret(tmp_path, daemons)
    break_the_settings(tmp_path)

    status = order_export("status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["process"]["pid"] == daemon.pid
    assert "task.batch_size: must be an integer from 1 to 10000 (got 0)" in status.stderr
    assert "keeps its last good settings" in status.stderr

    ran = order_export("run", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["outcome"] == "succeeded"
    assert "task.batch_size" in ran.stderr

    cancelled = order_export("cancel", cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "no run to cancel" in cancelled.stderr and "task.batch_size" in cancelled.stderr
    assert "Traceback" not in status.stderr + ran.stderr + cancelled.stderr
    assert daemon.stop() == 0


def test_a_broken_settings_file_without_a_daemon(tmp_path: Path) -> None:
    write_settings(tmp_path)
    assert order_export("run", cwd=tmp_path).returncode == 0
    break_the_settings(tmp_path)

    status = order_export("status", "--json", cwd=tmp_path)
    ran = order_export("run", cwd=tmp_path)

    assert status.returncode == 0, status.stderr  # documented: status always exits 0
    assert json.loads(status.stdout)["last_run"]["outcome"] == "succeeded"  # read the state
    assert "task.batch_size" in status.stderr
    assert ran.returncode == 2
    assert "task.batch_size: must be an integer from 1 to 10000 (got 0)" in ran.stderr


def test_status_names_a_run_command_that_holds_the_state(tmp_path: Path) -> None:
    write_settings(tmp_path, {"task": {"batch_size": 5}})
    made = order_export("demo", "--orders", "20000", "--malformed", "0", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    runner = start_command("run", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        status: dict[str, Any] = {}
        while time.monotonic() < deadline and runner.poll() is None:
            answer = order_export("status", "--json", cwd=tmp_path)
            assert answer.returncode == 0, answer.stderr
            status = json.loads(answer.stdout)
            if status["process"] is not None and status["run"] is not None:
                break
        assert status["process"] is not None, status
        assert status["process"]["pid"] == runner.pid
        assert status["process"]["role"] == "run"
        assert status["run"]["run_id"] == 1 and status["run"]["trigger"] == "manual"
    finally:
        runner.send_signal(signal.SIGINT)
        runner.communicate(timeout=120)

    after = json.loads(order_export("status", "--json", cwd=tmp_path).stdout)
    assert after["process"] is None and after["run"] is None
