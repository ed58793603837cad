"""`order-export daemon` as systemd runs it: a real process, real signals, a real SMTP server."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from order_export_tui.daemon import SETTINGS_POLL_SECONDS, OneLineFormatter
from order_export_tui.destinations.file.connector import file_path
from order_export_tui.settings import load_settings
from tests.conftest import write_settings
from tests.support.cli import REPO, order_export
from tests.support.daemon_process import DaemonProcess as Daemon
from tests.support.ports import free_port
from tests.support.smtp_server import SmtpTestServer, make_self_signed_certificate

SMTP_PASSWORD = "mail-pass-not-for-logs"
WEBHOOK_SECRET = "webhook-secret-for-tests"


def start(daemons: list[Daemon], folder: Path, env: dict[str, str] | None = None) -> Daemon:
    daemon = Daemon(folder, env)
    daemons.append(daemon)
    daemon.wait_for(lambda text: " started: " in text)
    return daemon


def state_rows(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as db:
        return db.execute(sql).fetchall()


def test_sigterm_mid_run_stops_cleanly_and_a_restart_finishes_the_job(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    settings = load_settings(write_settings(tmp_path, {"task": {"batch_size": 10}}))
    assert (
        order_export("demo", "--orders", "20000", "--malformed", "0", cwd=tmp_path).returncode == 0
    )

    daemon = start(daemons, tmp_path)
    daemon.signal(signal.SIGUSR1)  # run now
    logs = tmp_path / "logs"
    deadline = time.monotonic() + 60
    while not any("batch 5 done" in p.read_text() for p in logs.glob("run-*.log")):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert daemon.stop() == 0
    assert "stopped cleanly" in daemon.output

    ((outcome, new),) = state_rows(settings.state_database_path, "SELECT outcome, new FROM run")
    exported = state_rows(settings.state_database_path, "SELECT count(*) FROM exported_order")[0][0]
    assert outcome == "cancelled"
    assert 0 < exported == new < 20000
    assert exported % 10 == 0  # whole batches, each recorded once

    again = start(daemons, tmp_path)
    again.signal(signal.SIGUSR1)
    again.wait_for(lambda text: "run 2 succeeded" in text)
    assert again.stop() == 0

    total = state_rows(settings.state_database_path, "SELECT count(*) FROM exported_order")[0][0]
    assert total == 20000
    lines = file_path(settings).read_text().splitlines()
    sent = Counter(r["key"] for line in lines for r in json.loads(line)["body"]["records"])
    assert len(sent) == 20000 and max(sent.values()) == 1  # a clean stop repeats nothing


def test_a_second_daemon_refuses_and_names_the_first(tmp_path: Path, daemons: list[Daemon]) -> None:
    write_settings(tmp_path)
    first = start(daemons, tmp_path)

    second = order_export("daemon", cwd=tmp_path, timeout=30)

    assert second.returncode == 1
    assert f"pid {first.process.pid}" in second.stderr
    assert "order-export daemon" in second.stderr
    assert first.process.poll() is None
    assert first.stop() == 0


def failing_settings(folder: Path, **email: Any) -> None:
    write_settings(
        folder,
        {
            "task": {"send_email_on_failure": True, "max_items_to_skip": 0},
            "email": {"sender": "order-export@example.com", "to": ["ops@example.com"], **email},
        },
    )
    assert order_export("demo", "--orders", "50", "--malformed", "2", cwd=folder).returncode == 0


def test_a_failed_run_mails_the_administrator_once_over_plain_smtp(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    with SmtpTestServer() as smtp:
        failing_settings(tmp_path, smtp_host=smtp.host, smtp_port=smtp.port)
        daemon = start(daemons, tmp_path)
        daemon.signal(signal.SIGUSR1)
        daemon.wait_for(lambda text: "failure e-mail sent" in text)
        assert daemon.stop() == 0

        assert len(smtp.messages) == 1
        message = smtp.messages[0].message
    assert message["Subject"] == "Order data export failed: Test webstore"
    body = message.get_content()  # type: ignore[attr-defined]
    assert "Order data export" in body
    assert "Test webstore" in body
    assert "max_items_to_skip = 0" in body  # the error message
    (finished_at,) = state_rows(
        load_settings(tmp_path / "settings.toml").state_database_path,
        "SELECT finished_at FROM run",
    )[0]
    assert finished_at[:19] in body  # when it failed, ISO 8601


def test_a_failed_run_mails_over_starttls_with_login(tmp_path: Path, daemons: list[Daemon]) -> None:
    certificate = make_self_signed_certificate(tmp_path)
    if certificate is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    with SmtpTestServer(starttls=certificate, credentials=("mailer", SMTP_PASSWORD)) as smtp:
        failing_settings(
            tmp_path,
            smtp_host="localhost",
            smtp_port=smtp.port,
            security="starttls",
            username="mailer",
            password_env="OE_TEST_SMTP_PASSWORD",
        )
        env = {"OE_TEST_SMTP_PASSWORD": SMTP_PASSWORD, "SSL_CERT_FILE": str(certificate.cert_file)}
        daemon = start(daemons, tmp_path, env)
        daemon.signal(signal.SIGUSR1)
        daemon.wait_for(lambda text: "failure e-mail sent" in text)
        assert daemon.stop() == 0

        assert len(smtp.messages) == 1
        assert smtp.messages[0].tls and smtp.messages[0].login == "mailer"
    assert SMTP_PASSWORD not in daemon.output
    for log_file in (tmp_path / "logs").iterdir():
        assert SMTP_PASSWORD not in log_file.read_text()


def test_a_down_mail_server_is_logged_and_the_daemon_keeps_running(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    port = free_port()
    failing_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port)
    daemon = start(daemons, tmp_path)

    daemon.signal(signal.SIGUSR1)
    daemon.wait_for(lambda text: "failure e-mail NOT sent" in text)
    assert f"127.0.0.1:{port}" in daemon.output
    daemon.signal(signal.SIGUSR1)  # still alive and working
    daemon.wait_for(lambda text: "run 2 failed" in text)
    assert daemon.stop() == 0


def test_a_successful_run_sends_no_mail(tmp_path: Path, daemons: list[Daemon]) -> None:
    with SmtpTestServer() as smtp:
        write_settings(
            tmp_path,
            {
                "task": {"send_email_on_failure": True},
                "email": {"smtp_host": smtp.host, "smtp_port": smtp.port},
            },
        )
        daemon = start(daemons, tmp_path)
        daemon.signal(signal.SIGUSR1)
        daemon.wait_for(lambda text: "run 1 succeeded" in text)
        assert daemon.stop() == 0
        assert smtp.messages == []


def test_a_settings_change_on_disk_reschedules_the_running_daemon(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    write_settings(tmp_path, {"task": {"run_on_schedule": True, "run_interval_minutes": 60}})
    daemon = start(daemons, tmp_path)
    assert "schedule every 60 minutes" in daemon.output

    write_settings(
        tmp_path,
        {"task": {"run_on_schedule": True, "run_interval_minutes": 0, "run_time": "23:59"}},
    )
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda text: "schedule daily at 23:59" in text)

    write_settings(tmp_path, {"task": {"batch_size": 0}})  # invalid: the old settings stay
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda text: "settings not applied" in text)
    assert "task.batch_size" in daemon.output
    assert daemon.stop() == 0


def test_an_event_answered_202_survives_a_sigkill_and_is_delivered_after_restart(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    from order_export_tui.service.intake import signature_for
    from tests.fakes.mailchimp import MailchimpFake
    from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, mailchimp_overrides
    from tests.support.orders import order

    port = free_port()
    env = {KEY_ENV: KEY, "OE_TEST_WEBHOOK_SECRET": WEBHOOK_SECRET}
    with MailchimpFake(KEY, lists=(AUDIENCE,), latency=1.0) as fake:
        write_settings(
            tmp_path,
            {
                **mailchimp_overrides(fake),
                "webhook": {
                    "enabled": True,
                    "listen": f"127.0.0.1:{port}",
                    "secret_env": "OE_TEST_WEBHOOK_SECRET",
                },
            },
        )
        daemon = start(daemons, tmp_path, env)
        daemon.wait_for(lambda text: "webhook intake listening" in text)
        body = orjson.dumps(order("SO-KILL"))
        answer = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/order-completed",
            content=body,
            headers={"X-Signature": signature_for(WEBHOOK_SECRET, body)},
            timeout=10,
        )
        assert answer.status_code == 202
        daemon.process.kill()  # at once: the slow platform has not confirmed anything
        daemon.process.wait()
        assert ("demo-store", "SO-KILL") not in fake.orders

        fake.latency = 0.0
        again = start(daemons, tmp_path, env)
        again.wait_for(lambda text: "delivered" in text)
        assert again.stop() == 0

        assert ("demo-store", "SO-KILL") in fake.orders
        assert fake.already_exists == 0  # delivered once, no repeat create
    database = load_settings(tmp_path / "settings.toml").state_database_path
    assert state_rows(database, "SELECT status FROM realtime_event") == [("delivered",)]


# --- the daemon's stderr through a pipe: one line per event ----------------------------------

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (INFO|WARNING|ERROR) (.+)")


class PipedDaemon:
    """`order-export daemon` with stdout and stderr on pipes, as journald or `| grep` reads
    them; a thread drains stderr so the daemon never blocks on a full pipe."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "order_export_tui", "daemon"],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(REPO), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in list(self.lines)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._reader.join(timeout=5)
                raise AssertionError(f"no {text!r}; the daemon said:\n" + "\n".join(self.lines))
            time.sleep(0.05)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=5)
        assert self.process.stdout is not None
        assert self.process.stdout.read() == ""  # the daemon writes nothing to stdout
        self.process.stdout.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_the_daemons_stderr_in_a_pipe_has_each_event_once_on_one_line(tmp_path: Path) -> None:
    from tests.fakes.mailchimp import MailchimpFake
    from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, mailchimp_overrides

    with SmtpTestServer() as smtp, MailchimpFake(KEY, lists=(AUDIENCE,), latency=1.0) as fake:
        fake.break_requests(lambda method, path: True)  # every attempt fails after 1 s
        valid = {
            **mailchimp_overrides(fake),
            "task": {
                "send_email_on_failure": True,
                "max_retries": 1,
                "max_retry_interval_seconds": 5,
            },
            "email": {"smtp_host": smtp.host, "smtp_port": smtp.port, "to": ["ops@example.com"]},
        }
        write_settings(tmp_path, valid)
        assert order_export("demo", "--orders", "40", cwd=tmp_path).returncode == 0
        daemon = PipedDaemon(tmp_path, {KEY_ENV: KEY})
        try:
            daemon.wait_for(" started: ")
            daemon.process.send_signal(signal.SIGUSR1)
            daemon.wait_for("run 1 started")
            daemon.process.send_signal(signal.SIGUSR1)  # while run 1 waits for Mailchimp
            daemon.wait_for("run request skipped")
            daemon.wait_for("failure e-mail sent")

            write_settings(tmp_path, {**valid, "webstore": {"name": "Renamed"}})
            daemon.process.send_signal(signal.SIGHUP)
            daemon.wait_for("settings applied")
            write_settings(tmp_path, {**valid, "task": {"batch_size": 0}})
            daemon.process.send_signal(signal.SIGHUP)
            daemon.wait_for("settings not applied")
            time.sleep(SETTINGS_POLL_SECONDS + 1.5)  # the file watcher's turn: it must stay quiet
            assert daemon.stop() == 0
        finally:
            daemon.kill()
        assert len(smtp.messages) == 1

    messages = []
    for line in daemon.lines:
        match = LOG_LINE.fullmatch(line)
        assert match, f"not a whole log line: {line!r}\n" + "\n".join(daemon.lines)
        messages.append(match.group(2))
    twice = [message for message, seen in Counter(messages).items() if seen > 1]
    assert twice == [], "\n".join(daemon.lines)
    for event in ("run request skipped", "failure e-mail", "settings applied", "not applied"):
        assert sum(event in message for message in messages) == 1, (event, daemon.lines)
    assert "run 1: failure e-mail sent to ops@example.com" in messages
    assert "signal run request skipped: a run is already in progress" in messages


def test_a_multi_line_message_is_logged_on_one_line() -> None:
    record = logging.LogRecord(
        "order_export.daemon",
        logging.ERROR,
        __file__,
        1,
        "NOT sent: %s",
        ("421 busy\n421 bye",),
        None,
    )

    [line] = OneLineFormatter("%(levelname)s %(message)s").format(record).splitlines()

    assert line == "ERROR NOT sent: 421 busy 421 bye"
