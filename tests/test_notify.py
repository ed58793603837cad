"""The failure e-mail, as the webstore administrator relies on it, against a real SMTP server."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import pytest

from order_export_tui.engine.events import CANCELLED, FAILED, SUCCEEDED, RunReport
from order_export_tui.service.notify import (
    NotificationError,
    build_failure_message,
    notify_run_failed,
    send_failure_email,
)
from order_export_tui.settings import Settings
from tests.conftest import SettingsMaker
from tests.support.ports import free_port
from tests.support.smtp_server import (
    SmtpTestServer,
    TlsCertificate,
    make_self_signed_certificate,
)

ADMINS = ["admin@example.com", "ops@example.org"]
SENDER = "order-export@shop.example"
ERROR = "Destination unreachable after 3 retries: 503 Service Unavailable"
LOG_FILE = "/var/log/order-export/run-42.log"
COUNTS = {"read": 120, "new": 7, "updated": 5, "unchanged": 101, "retried": 3, "skipped": 11}
PASSWORD_ENV = "ORDER_EXPORT_TEST_SMTP_PASSWORD"
PASSWORD = "pa55-w0rd-Zq9!"
USER = "robot"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> TlsCertificate:
    made = make_self_signed_certificate(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("TLS tests need the openssl command to make a self-signed certificate")
    return made


@pytest.fixture
def server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as running:
        yield running


def report(outcome: str = FAILED, **changes: Any) -> RunReport:
    finished_at = datetime(2026, 11, 27, 10, 21, 5).astimezone()
    fields: dict[str, Any] = {
        "run_id": 42,
        "trigger": "schedule",
        "outcome": outcome,
        "started_at": finished_at - timedelta(minutes=3),
        "finished_at": finished_at,
        "counts": dict(COUNTS),
        "error": ERROR if outcome == FAILED else None,
        "log_file": LOG_FILE,
    }
    return RunReport(**{**fields, **changes})


def mail_settings(
    make_settings: SettingsMaker,
    host: str,
    port: int,
    *,
    enabled: bool = True,
    **email: Any,
) -> Settings:
    table = {"smtp_host": host, "smtp_port": port, "sender": SENDER, "to": ADMINS, **email}
    return make_settings(task={"send_email_on_failure": enabled}, email=table)


def settings_for(make_settings: SettingsMaker, server: SmtpTestServer, **email: Any) -> Settings:
    return mail_settings(make_settings, server.host, server.port, **email)


def login_settings(make_settings: SettingsMaker, server: SmtpTestServer, security: str) -> Settings:
    return settings_for(
        make_settings, server, security=security, username=USER, password_env=PASSWORD_ENV
    )


def body_of(message: Message) -> str:
    """The plain-text body with "\n" line ends (it arrives over SMTP with CRLF)."""
    assert message.get_content_type() == "text/plain"
    return "\n".join(message.get_content().splitlines())  # type: ignore[attr-defined]


def assert_failure_facts(message: Message, sent: RunReport) -> None:
    assert message["Subject"] == "Order data export failed: Test webstore"
    body = body_of(message)
    assert "Order data export" in body
    assert "Test webstore" in body
    assert sent.finished_at.isoformat(timespec="seconds") in body
    assert ERROR in body
    for name, value in COUNTS.items():
        assert re.search(rf"^\s*{name}:\s+{value}$", body, re.MULTILINE), name
    assert re.search(rf"^Log file:\s+{re.escape(LOG_FILE)}$", body, re.MULTILINE)
    assert re.search(r"^Run id:\s+42$", body, re.MULTILINE)


# --- delivery ----------------------------------------------------------------------------------


async def test_failed_run_mails_every_administrator_once(
    make_settings: SettingsMaker, server: SmtpTestServer
) -> None:
    failed = report()

    result = await notify_run_failed(settings_for(make_settings, server), failed)

    assert result is not None
    assert (result.sent, result.error, result.recipients) == (True, None, ADMINS)
    [received] = server.messages
    assert received.mail_from == SENDER
    assert sorted(received.rcpt_tos) == sorted(ADMINS)
    assert received.message["From"] == SENDER
    assert [a.strip() for a in received.message["To"].split(",")] == ADMINS
    assert received.message["Date"] and received.message["Message-ID"]
    assert_failure_facts(received.message, failed)


async def test_non_ascii_webstore_and_error_arrive_intact(make_settings: SettingsMaker) -> None:
    name, error = "Café Zürich & Ørsted", "Zeitüberschreitung beim Senden ✗"
    with SmtpTestServer() as server:
        settings = settings_for(make_settings, server)
        settings.webstore.name = name

        result = await notify_run_failed(settings, report(error=error))

    assert result is not None and result.sent, result
    [received] = server.messages
    assert received.raw.isascii()  # 7-bit safe for servers without 8BITMIME
    assert received.message["Subject"] == f"Order data export failed: {name}"
    assert name in body_of(received.message) and error in body_of(received.message)


def test_failure_time_is_iso_8601_with_offset_in_server_time(make_settings: SettingsMaker) -> None:
    settings = make_settings(webstore={"name": "Shop\nNorth"})
    failed = report(finished_at=datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC))

    message = build_failure_message(settings, failed)

    assert message["Subject"] == "Order data export failed: Shop North"  # one header line
    failed_at = re.search(r"^Failed at:\s+(\S+)$", body_of(message), re.MULTILINE)
    assert failed_at is not None
    shown = datetime.fromisoformat(failed_at.group(1))
    assert shown.utcoffset() == datetime(2026, 11, 27, 9).astimezone().utcoffset()
    assert shown == failed.finished_at


async def test_starttls_with_login_never_reveals_the_password(
    make_settings: SettingsMaker,
    certificate: TlsCertificate,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with SmtpTestServer(starttls=certificate, credentials=(USER, PASSWORD)) as server:
        settings = login_settings(make_settings, server, "starttls")
        failed = report()

        result = await notify_run_failed(settings, failed, ssl_context=certificate.client_context())

    assert result is not None and result.sent, result
    [received] = server.messages
    assert received.tls and received.login == USER
    assert sorted(received.rcpt_tos) == sorted(ADMINS)
    assert_failure_facts(received.message, failed)
    assert PASSWORD.encode() not in received.raw
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)


async def test_refused_login_is_reported_without_the_password(
    make_settings: SettingsMaker,
    certificate: TlsCertificate,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with SmtpTestServer(starttls=certificate, credentials=(USER, "another one")) as server:
        settings = login_settings(make_settings, server, "starttls")
        where = f"127.0.0.1:{server.port}"

        result = await notify_run_failed(
            settings, report(), ssl_context=certificate.client_context()
        )
        with pytest.raises(NotificationError) as raised:
            send_failure_email(settings, report(), ssl_context=certificate.client_context())

    assert result is not None and not result.sent
    assert result.error is not None and where in result.error and "login" in result.error
    assert server.messages == []
    assert PASSWORD not in str(raised.value) and PASSWORD not in repr(raised.value)
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)
    assert PASSWORD not in caplog.text


async def test_implicit_tls_delivers(
    make_settings: SettingsMaker, certificate: TlsCertificate
) -> None:
    with SmtpTestServer(implicit_tls=certificate) as server:
        settings = settings_for(make_settings, server, security="tls")

        result = await notify_run_failed(
            settings, report(), ssl_context=certificate.client_context()
        )

    assert result is not None and result.sent, result
    [received] = server.messages
    assert received.tls


# --- failures: clear, and nothing sent in clear text --------------------------------------------


def test_starttls_not_offered_fails_and_sends_nothing(
    make_settings: SettingsMaker, server: SmtpTestServer
) -> None:
    settings = settings_for(make_settings, server, security="starttls")

    with pytest.raises(NotificationError, match="does not offer STARTTLS") as raised:
        send_failure_email(settings, report())

    assert f"127.0.0.1:{server.port}" in str(raised.value)
    assert server.messages == []


def test_untrusted_certificate_fails_and_sends_nothing(
    make_settings: SettingsMaker, certificate: TlsCertificate
) -> None:
    with SmtpTestServer(starttls=certificate) as server:
        settings = settings_for(make_settings, server, security="starttls")

        # No ssl_context: the system's trust store, which does not know the self-signed one.
        with pytest.raises(NotificationError, match="certificate") as raised:
            send_failure_email(settings, report())

    assert f"127.0.0.1:{server.port}" in str(raised.value)
    assert "STARTTLS" in str(raised.value)
    assert server.messages == []


async def test_down_mail_server_is_reported_not_raised(
    make_settings: SettingsMaker, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    settings = mail_settings(make_settings, "127.0.0.1", port)

    result = await notify_run_failed(settings, report())

    assert result is not None
    assert not result.sent and result.recipients == []
    assert result.error is not None
    assert f"127.0.0.1:{port}" in result.error and "connection refused" in result.error
    # The result is the one record of it: the daemon logs it, the dashboard shows it.
    assert [r for r in caplog.records if r.name == "order_export.notify"] == []


async def test_silent_server_times_out_without_blocking_the_event_loop(
    make_settings: SettingsMaker,
) -> None:
    # Listening but never accepting: the connection opens, the greeting never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        settings = mail_settings(make_settings, "127.0.0.1", port)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.05)

        ticker = asyncio.create_task(tick())
        result = await notify_run_failed(settings, report(), timeout=0.5)
        ticker.cancel()

    assert result is not None and not result.sent
    assert result.error is not None and "no answer within 0.5 seconds" in result.error
    assert ticks >= 5


async def test_recipients_refused(make_settings: SettingsMaker) -> None:
    with SmtpTestServer(refuse="rcpt") as server:
        result = await notify_run_failed(settings_for(make_settings, server), report())

    assert result is not None and not result.sent
    assert result.error is not None
    assert "refused" in result.error and all(a in result.error for a in ADMINS)
    assert server.messages == []


async def test_some_recipients_refused_still_reaches_the_others(
    make_settings: SettingsMaker,
) -> None:
    with SmtpTestServer(refuse_recipients=[ADMINS[1]]) as server:
        result = await notify_run_failed(settings_for(make_settings, server), report())

    assert result is not None and result.sent
    assert result.recipients == [ADMINS[0]]
    assert result.error is not None and ADMINS[1] in result.error
    [received] = server.messages
    assert received.rcpt_tos == [ADMINS[0]]


async def test_service_unavailable(make_settings: SettingsMaker) -> None:
    with SmtpTestServer(refuse="service") as server:
        result = await notify_run_failed(settings_for(make_settings, server), report())

    assert result is not None and not result.sent
    assert result.error is not None and "421" in result.error
    assert server.messages == []


async def test_missing_password_variable_is_named(
    make_settings: SettingsMaker, server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    settings = login_settings(make_settings, server, "none")

    result = await notify_run_failed(settings, report())

    assert result is not None and not result.sent
    assert result.error is not None and PASSWORD_ENV in result.error
    assert server.messages == []


# --- when nothing is sent ----------------------------------------------------------------------


@pytest.mark.parametrize("outcome", [SUCCEEDED, CANCELLED])
async def test_run_that_did_not_fail_sends_nothing(
    make_settings: SettingsMaker, server: SmtpTestServer, outcome: str
) -> None:
    result = await notify_run_failed(settings_for(make_settings, server), report(outcome))

    assert result is None
    assert server.messages == []


async def test_failure_e_mail_switched_off_sends_nothing(
    make_settings: SettingsMaker, server: SmtpTestServer
) -> None:
    settings = settings_for(make_settings, server, enabled=False)

    assert await notify_run_failed(settings, report()) is None
    assert server.messages == []


def test_message_holds_no_secret(
    make_settings: SettingsMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    settings = mail_settings(
        make_settings, "smtp.example", 587, username=USER, password_env=PASSWORD_ENV
    )

    raw = build_failure_message(settings, report()).as_string()

    assert PASSWORD not in raw and PASSWORD_ENV not in raw
