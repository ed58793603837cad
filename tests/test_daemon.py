"""`order-export daemon` as systemd runs it: a real process, real signals, a real SMTP server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from order_export_tui.settings import load_settings
from tests.conftest import write_settings
from tests.support.cli import REPO, order_export
from tests.support.ports import free_port
from tests.support.smtp_server import SmtpTestServer, make_self_signed_certificate

SMTP_PASSWORD = "mail-pass-not-for-logs"
WEBHOOK_SECRET = "webhook-secret-for-tests"


class Daemon:
    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.log_path = folder / f"daemon-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "order_export_tui", "daemon"],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output
            if condition(text):
                return text
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited ({self.process.returncode}):\n{text}")
            time.sleep(0.05)
        raise AssertionError(f"timed out; daemon said:\n{self.output}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()


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
    lines = settings.file_path.read_text().splitlines()
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
