"""The failure e-mail to the webstore administrator (interfaces.md §2 ``[email]``, §6).

After every run the service calls :func:`notify_run_failed`. It sends nothing unless the run
failed and ``task.send_email_on_failure`` is on, sends in a worker thread so the event loop keeps
running, and never raises because of the mail server: the caller gets a
:class:`NotificationResult` to show on the dashboard instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import logging
import smtplib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from order_export_tui import TASK_NAME
from order_export_tui.engine.events import FAILED, RunReport
from order_export_tui.settings import EmailSettings, Settings, secret_value

logger = logging.getLogger("order_export.notify")

COUNT_NAMES = ("read", "new", "updated", "unchanged", "retried", "skipped", "cancelled")
DEFAULT_TIMEOUT = 30.0
_POLICY = email.policy.default.clone(cte_type="7bit")


class NotificationError(Exception):
    """The failure e-mail could not be sent; the message names host:port and what failed."""


class PartialDeliveryError(NotificationError):
    """The server accepted the message for some recipients and refused the others."""

    def __init__(self, message: str, delivered: list[str], refused: list[str]) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.refused = refused


@dataclass(frozen=True)
class NotificationResult:
    """What became of one failure e-mail.

    ``recipients`` are the addresses the mail server accepted the message for (empty when
    ``sent`` is false). ``error`` explains a failure, or names the refused addresses when the
    message reached only some of the recipients.
    """

    sent: bool
    error: str | None
    recipients: list[str] = field(default_factory=list)


# --- the message -------------------------------------------------------------------------------


def build_failure_message(settings: Settings, report: RunReport) -> EmailMessage:
    """The plain-text failure e-mail for a failed run: From, To, Subject, Date, Message-ID."""
    # 7-bit transfer encoding: a non-ASCII webstore name or error survives servers without 8BITMIME.
    message = EmailMessage(policy=_POLICY)
    message["From"] = settings.email.sender
    message["To"] = ", ".join(settings.email.to)
    message["Subject"] = f"{TASK_NAME} failed: {_one_line(settings.webstore.name)}"
    message["Date"] = format_datetime(datetime.now().astimezone())
    # The sender's domain, not make_msgid's default socket.getfqdn(), which may stall on DNS.
    message["Message-ID"] = make_msgid(domain=_domain_of(settings.email.sender))
    message.set_content(_failure_body(settings, report))
    return message


def _failure_body(settings: Settings, report: RunReport) -> str:
    failed_at = report.finished_at.astimezone().isoformat(timespec="seconds")
    error = report.error or "(no error message was recorded)"
    lines = [
        f"The {TASK_NAME} task failed.",
        "",
        f"Task:      {TASK_NAME}",
        f"Webstore:  {settings.webstore.name}",
        f"Failed at: {failed_at}",
        f"Error:     {error}",
        "",
        "Counts of this run:",
        *(f"  {name + ':':<11}{report.counts.get(name, 0)}" for name in COUNT_NAMES),
        "",
        f"Run id:    {report.run_id}",
        f"Log file:  {report.log_file or '(none)'}",
    ]
    return "\n".join(lines) + "\n"


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _one_line(text: str) -> str:
    # A header value must not contain line breaks; a TOML string may.
    return " ".join(text.split())


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


# --- sending -----------------------------------------------------------------------------------


def send_failure_email(
    settings: Settings,
    report: RunReport,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Send the failure e-mail over SMTP (blocking); NotificationError when that fails.

    ``email.security``: "none" plain SMTP, "starttls" SMTP upgraded with STARTTLS (refusing to
    go on in clear text when the server does not offer it), "tls" SMTP over TLS from the start.
    """
    config = settings.email
    where = _format_address(config.smtp_host, config.smtp_port)
    password = _smtp_password(config, where)
    message = build_failure_message(settings, report)
    try:
        with _connect(config, where, timeout, ssl_context) as smtp:
            if password is not None:
                with _step("login", where, config, timeout):
                    smtp.login(config.username, password)
            with _step("send", where, config, timeout):
                refused = smtp.send_message(message)
    except NotificationError as error:
        if password is None:
            raise
        raise NotificationError(_redact(str(error), password)) from None
    if refused:
        raise _partial_delivery(config, where, refused)


def _smtp_password(config: EmailSettings, where: str) -> str | None:
    """The SMTP password, or None when no login is configured."""
    if config.username == "":
        return None
    password = secret_value(config.password_env)
    if password is None:
        raise NotificationError(
            f"cannot send the failure e-mail via {where}: environment variable "
            f"{config.password_env} (email.password_env) holding the SMTP password is not set"
        )
    return password


@contextlib.contextmanager
def _connect(
    config: EmailSettings, where: str, timeout: float, ssl_context: ssl.SSLContext | None
) -> Iterator[smtplib.SMTP]:
    """An open SMTP session, TLS-protected as ``security`` says; QUIT when done."""
    host, port = config.smtp_host, config.smtp_port
    with _step("connect", where, config, timeout):
        if config.security == "tls":
            context = ssl_context or ssl.create_default_context()
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if config.security == "starttls":
            _start_tls(smtp, config, where, timeout, ssl_context)
        yield smtp
        # Once the message is accepted, a QUIT that goes wrong does not undo the delivery.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
    finally:
        smtp.close()


def _start_tls(
    smtp: smtplib.SMTP,
    config: EmailSettings,
    where: str,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> None:
    with _step("STARTTLS", where, config, timeout):
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            raise NotificationError(
                f"cannot send the failure e-mail via {where}: the server does not offer "
                'STARTTLS (email.security = "starttls"); not sending in clear text'
            )
        smtp.starttls(context=ssl_context or ssl.create_default_context())
        smtp.ehlo()


@contextlib.contextmanager
def _step(what: str, where: str, config: EmailSettings, timeout: float) -> Iterator[None]:
    """Turn whatever ``what`` raises into a NotificationError naming host:port and the step."""
    try:
        yield
    except NotificationError:
        raise
    except (smtplib.SMTPException, OSError) as error:
        reason = _describe(error, config, timeout)
        raise NotificationError(
            f"cannot send the failure e-mail via {where}: {what} failed: {reason}"
        ) from None


def _describe(error: BaseException, config: EmailSettings, timeout: float) -> str:
    """A short, operator-readable reason; never includes what the client sent."""
    match error:
        case smtplib.SMTPAuthenticationError():
            return f"login refused for user {config.username!r} ({_reply(error)})"
        case smtplib.SMTPRecipientsRefused():
            return "every recipient was refused (" + _refusals(error.recipients) + ")"
        case smtplib.SMTPSenderRefused():
            return f"sender {config.sender} refused ({_reply(error)})"
        case smtplib.SMTPResponseException():
            return f"the server answered {_reply(error)}"
        case smtplib.SMTPServerDisconnected() if isinstance(error.__context__, TimeoutError):
            # smtplib reports a read that timed out as a disconnection.
            return f"no answer within {timeout:g} seconds"
        case smtplib.SMTPServerDisconnected():
            return "the server closed the connection"
        case smtplib.SMTPException():
            return str(error) or type(error).__name__
        case ConnectionRefusedError():
            return "connection refused (is the SMTP server running on that port?)"
        case TimeoutError():  # socket.timeout is TimeoutError
            return f"no answer within {timeout:g} seconds"
        case socket.gaierror():
            return f"cannot resolve host {config.smtp_host!r} ({error.strerror})"
        case ssl.SSLCertVerificationError():
            return f"TLS certificate not trusted ({error.verify_message})"
        case ssl.SSLError():
            return f"TLS error ({error.reason or error})"
        case OSError():
            return error.strerror or str(error) or type(error).__name__
    return str(error)


def _reply(error: smtplib.SMTPResponseException) -> str:
    text = error.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{error.smtp_code} {text}".strip()


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(
        f"{address}: {code} {reply.decode('utf-8', 'replace')}"
        for address, (code, reply) in refused.items()
    )


def _partial_delivery(
    config: EmailSettings, where: str, refused: dict[str, tuple[int, bytes]]
) -> PartialDeliveryError:
    delivered = [address for address in config.to if address not in refused]
    return PartialDeliveryError(
        f"failure e-mail sent via {where} to {', '.join(delivered)}, but the server refused "
        f"{_refusals(refused)}",
        delivered=delivered,
        refused=list(refused),
    )


def _redact(text: str, password: str | None) -> str:
    # Belt and braces: no server reply should echo the password, but none must reach a log.
    return text.replace(password, "********") if password else text


# --- the service's call ------------------------------------------------------------------------


async def notify_run_failed(
    settings: Settings,
    report: RunReport,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> NotificationResult | None:
    """E-mail the administrator about a failed run, if so configured; never raises for SMTP.

    None (nothing sent) when the run did not fail or ``task.send_email_on_failure`` is off.
    Logs nothing for what the result says: the caller owns that line (the daemon logs the
    service's `FailureEmailOutcome`, the dashboard shows it), so it is said once.
    """
    if report.outcome != FAILED or not settings.task.send_email_on_failure:
        return None
    try:
        await asyncio.to_thread(
            send_failure_email, settings, report, timeout=timeout, ssl_context=ssl_context
        )
    except PartialDeliveryError as error:
        return NotificationResult(sent=True, error=str(error), recipients=error.delivered)
    except NotificationError as error:
        return NotificationResult(sent=False, error=str(error), recipients=[])
    except Exception as error:  # a bug here must not take the service down with it
        # The traceback is for the bug report; the result's error is the event's line.
        logger.debug("run %s: the failure e-mail code failed", report.run_id, exc_info=True)
        return NotificationResult(sent=False, error=f"unexpected error: {error!r}")
    return NotificationResult(sent=True, error=None, recipients=list(settings.email.to))
