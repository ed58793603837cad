"""The command line and a running daemon: status, run and cancel go through its control
socket; without a daemon they work on their own (interfaces.md §1)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
from pathlib import Path

import httpx

from order_export_tui.settings import load_settings
from tests.conftest import write_settings
from tests.support.daemon_process import (
    DaemonProcess,
    free_port,
    order_export,
    start_command,
)
from tests.support.smtp_server import SmtpTestServer


def start_daemon(daemons: list[DaemonProcess], folder: Path) -> DaemonProcess:
    daemon = DaemonProcess(folder)
    daemons.append(daemon)
    return daemon.wait_started()


def shop(tmp_path: Path, orders: int = 300, batch_size: int = 50) -> Path:
    write_settings(tmp_path, {"task": {"batch_size": batch_size}})
    made = order_export("demo", "--orders", str(orders), "--malformed", "0", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return tmp_path


def socket_path(folder: Path) -> Path:
    return load_settings(folder / "settings.toml").control_socket_path


def test_the_control_socket_is_owner_only_and_removed_on_a_clean_stop(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path)
    os.umask(0o022)  # what a shell usually has; the socket must not follow it
    daemon = start_daemon(daemons, folder)
    path = socket_path(folder)
    info = os.lstat(path)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert daemon.stop() == 0
    assert not path.exists()


def test_a_socket_left_by_a_killed_daemon_is_replaced(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path)
    first = start_daemon(daemons, folder)
    first.kill()
    path = socket_path(folder)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)  # left behind, nobody answers
    second = start_daemon(daemons, folder)
    status = order_export("status", "--json", cwd=folder)
    assert json.loads(status.stdout)["process"]["pid"] == second.pid
    assert second.stop() == 0


def test_a_file_in_the_sockets_place_is_a_clear_error(tmp_path: Path) -> None:
    folder = shop(tmp_path)
    path = socket_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a socket")
    result = order_export("daemon", cwd=folder, timeout=60)
    assert result.returncode == 1
    assert "Not started:" in result.stderr and "storage.control_socket" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_text() == "not a socket"  # left untouched


def test_status_json_with_and_without_a_daemon(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path)
    assert order_export("run", cwd=folder).returncode == 0
    alone = json.loads(order_export("status", "--json", cwd=folder).stdout)
    assert alone["process"] is None and alone["run"] is None
    assert alone["last_run"]["outcome"] == "succeeded"
    assert alone["last_run"]["counts"]["new"] == 300
    assert alone["skipped_orders"] == 0 and alone["queue"] == {"queued": 0, "held": 0}

    daemon = start_daemon(daemons, folder)
    served = json.loads(order_export("status", "--json", cwd=folder).stdout)
    assert served["process"]["pid"] == daemon.pid
    assert served["process"]["role"] == "daemon"
    assert served["last_run"] == alone["last_run"]
    text = order_export("status", cwd=folder)
    assert text.returncode == 0 and f"pid {daemon.pid}" in text.stdout


def test_run_is_carried_out_by_the_running_daemon(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path)
    daemon = start_daemon(daemons, folder)
    result = order_export("run", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "succeeded" and report["counts"]["new"] == 300
    # The daemon ran it (its log says so) and still runs: nothing was refused for the lock.
    daemon.wait_for(lambda text: f"run {report['run_id']} succeeded" in text)
    assert daemon.running
    again = order_export("run", "--json", cwd=folder)
    assert json.loads(again.stdout)["counts"]["unchanged"] == 300


def test_cancel_stops_the_daemons_run_and_waits_for_it(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path, orders=20000, batch_size=5)
    daemon = start_daemon(daemons, folder)
    follower = start_command("run", "--json", cwd=folder)
    daemon.wait_for(lambda text: "started (manual)" in text)
    cancelled = order_export("cancel", cwd=folder)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stderr
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 130, err
    report = json.loads(out)
    assert report["outcome"] == "cancelled" and report["counts"]["new"] < 20000
    assert daemon.running

    idle = order_export("cancel", cwd=folder)
    assert idle.returncode == 0 and "no run to cancel" in idle.stderr


def test_cancel_without_a_daemon_exits_1(tmp_path: Path) -> None:
    folder = shop(tmp_path)
    result = order_export("cancel", cwd=folder)
    assert result.returncode == 1
    assert "No order-export daemon" in result.stderr


def test_control_never_listens_on_tcp(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    folder = shop(tmp_path)
    daemon = start_daemon(daemons, folder)
    listening = Path(f"/proc/{daemon.pid}/net/tcp").read_text().splitlines()[1:]
    own_inodes = {
        os.readlink(f"/proc/{daemon.pid}/fd/{fd}")
        for fd in os.listdir(f"/proc/{daemon.pid}/fd")
        if os.readlink(f"/proc/{daemon.pid}/fd/{fd}").startswith("socket:")
    }
    tcp_listeners = {f"socket:[{line.split()[9]}]" for line in listening if line.split()[3] == "0A"}
    assert not own_inodes & tcp_listeners  # control never listens on TCP
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(str(socket_path(folder)))  # the owner (this test's user) may connect
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.stop() == 0


def test_a_failed_run_command_mails_the_administrator_once(tmp_path: Path) -> None:
    """`order-export run` from cron with the destination down: one failure e-mail."""
    down = free_port()
    with SmtpTestServer() as smtp:
        write_settings(
            tmp_path,
            {
                "task": {"send_email_on_failure": True, "max_retries": 0},
                "destination": {"app": "dotdigital"},
                "dotdigital": {"api_user": "apiuser", "base_url": f"http://127.0.0.1:{down}"},
                "email": {
                    "smtp_host": smtp.host,
                    "smtp_port": smtp.port,
                    "to": ["ops@example.com"],
                },
            },
        )
        assert order_export("demo", "--orders", "20", cwd=tmp_path).returncode == 0
        result = order_export(
            "run", "--json", cwd=tmp_path, env={"DOTDIGITAL_API_PASSWORD": "pw-for-tests"}
        )
        assert result.returncode == 1, result.stderr
        report = json.loads(result.stdout)
        assert len(smtp.messages) == 1
        message = smtp.messages[0].message
    assert smtp.messages[0].rcpt_tos == ["ops@example.com"]
    assert message["Subject"] == "Order data export failed: Test webstore"
    body = message.get_content()  # type: ignore[attr-defined]
    assert "Order data export" in body and "Test webstore" in body
    assert report["finished_at"][:19] in body  # the time of failure, ISO 8601
    assert report["error"] and report["error"][:40] in body
    assert "pw-for-tests" not in body + result.stderr + result.stdout


def test_resend_and_retry_go_through_the_running_daemon(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path)
    daemon = start_daemon(daemons, folder)
    assert order_export("run", cwd=folder).returncode == 0
    last_run = json.loads(order_export("status", "--json", cwd=folder).stdout)["last_run"]
    assert last_run["counts"]["new"] == 300

    resent = order_export("resend", "SO-100001", "SO-NOPE-1", "--json", cwd=folder)
    assert resent.returncode == 1, resent.stderr  # one of them is not in the ERP
    outcome = {order["order_id"]: order["status"] for order in json.loads(resent.stdout)["orders"]}
    assert outcome == {"SO-100001": "sent", "SO-NOPE-1": "not_found"}
    assert "SO-NOPE-1" in resent.stderr
    daemon.wait_for(lambda text: "started (resend)" in text)  # the daemon did it

    nothing = order_export("retry", cwd=folder)
    assert nothing.returncode == 0 and "no skipped orders" in nothing.stderr
    assert daemon.running


def test_the_socket_refuses_the_backfill_days_the_command_line_refuses(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    folder = shop(tmp_path, orders=20)
    start_daemon(daemons, folder)
    transport = httpx.HTTPTransport(uds=str(socket_path(folder)))
    with httpx.Client(transport=transport, base_url="http://control", timeout=30) as client:
        for day in ("0001-01-01", "9999-12-31", "2026-02-30"):
            answer = client.post("/runs", json={"trigger": "backfill", "since": day})
            refused = order_export("run", "--since", day, cwd=folder)
            assert answer.status_code == 400, answer.text
            assert refused.returncode == 2
            # The same words both ways in.
            assert f"argument --since: {answer.json()['error']}" in refused.stderr
        assert client.get("/status").json()["last_run"] is None  # no run started
