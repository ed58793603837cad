"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), capturing what it receives.

``SmtpTestServer`` binds a free port and runs in aiosmtpd's ``Controller`` thread with its own
event loop, so blocking ``smtplib`` clients and async code in the test's loop both reach it over
a real socket. It can offer and require STARTTLS, speak TLS from the first byte, require
AUTH LOGIN/PLAIN, and refuse recipients or the whole service::

    with SmtpTestServer(starttls=certificate, credentials=("robot", "s3cret")) as server:
        ...
        assert server.messages[0].message["Subject"] == "..."

``make_self_signed_certificate`` makes the certificate with the ``openssl`` command line
(``cryptography`` is not a dependency of this project); it returns None when there is no
``openssl``, and the ``tls_certificate`` fixture skips the test then.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
import threading
from collections.abc import Collection
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"

Refusal = Literal["rcpt", "service"]


@dataclass(frozen=True)
class TlsCertificate:
    """A self-signed certificate for localhost and 127.0.0.1, with its private key."""

    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and checks the host name)."""
        return ssl.create_default_context(cafile=str(self.cert_file))


def make_self_signed_certificate(folder: Path) -> TlsCertificate | None:
    """A fresh certificate in ``folder``; None when the ``openssl`` command is not available."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    # An EC key: generated in milliseconds where RSA takes a noticeable fraction of a second.
    command = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        return None
    return TlsCertificate(cert_file=cert, key_file=key)


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    message: Message  # parsed with email.policy.default, so in fact an EmailMessage
    raw: bytes
    login: str | None  # the user that logged in, None without AUTH
    tls: bool  # whether the session was TLS-protected when the message arrived


class _Handler:
    """aiosmtpd hooks: accept, refuse as configured, and record each message."""

    def __init__(self, server: SmtpTestServer) -> None:
        self._server = server

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._server.refuse == "service":
            return "421 4.3.2 Service not available, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self._server.refuse == "rcpt" or address in self._server.refuse_recipients:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        login = session.auth_data if session.authenticated else None
        self._server.record(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=email.message_from_bytes(raw, policy=email.policy.default),
                raw=raw,
                login=login,
                tls=self._server.implicit_tls or session.ssl is not None,
            )
        )
        return "250 Message accepted for delivery"


class _FreePortController(Controller):
    """A Controller on port 0: it reads the port the OS picked before its first self-test."""

    def factory(self) -> SMTP:
        smtp = super().factory()
        if self.ssl_context is not None:
            # aiosmtpd offers AUTH only after STARTTLS; here the whole connection is TLS.
            # Set after construction: passing auth_require_tls=False makes it warn.
            smtp._auth_require_tls = False
        return smtp

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpTestServer:
    """An SMTP server for one test; use as a context manager (or ``start()`` / ``stop()``).

    - ``starttls``: offer STARTTLS with this certificate and refuse mail before it.
    - ``implicit_tls``: TLS from the first byte with this certificate (``security = "tls"``).
    - ``credentials``: (user, password) that AUTH LOGIN/PLAIN must present before MAIL;
      with ``starttls``, AUTH is only offered once the session is TLS-protected.
    - ``refuse``: "rcpt" answers 550 to every RCPT TO, "service" answers 421 to MAIL FROM.
    - ``refuse_recipients``: addresses answered 550, the others accepted.
    """

    def __init__(
        self,
        *,
        starttls: TlsCertificate | None = None,
        implicit_tls: TlsCertificate | None = None,
        credentials: tuple[str, str] | None = None,
        refuse: Refusal | None = None,
        refuse_recipients: Collection[str] = (),
    ) -> None:
        self.refuse = refuse
        self.refuse_recipients = frozenset(refuse_recipients)
        self._credentials = credentials
        self.implicit_tls = implicit_tls is not None
        self._messages: list[ReceivedMessage] = []
        self._lock = threading.Lock()
        smtp_options: dict[str, Any] = {
            "server_hostname": "localhost",  # spares aiosmtpd a socket.getfqdn() DNS lookup
        }
        if starttls is not None:
            smtp_options.update(tls_context=starttls.server_context(), require_starttls=True)
        if credentials is not None:
            smtp_options.update(authenticator=self._authenticate, auth_required=True)
        self._controller = _FreePortController(
            _Handler(self),
            hostname=HOST,
            port=0,
            ssl_context=implicit_tls.server_context() if implicit_tls else None,
            **smtp_options,
        )

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def record(self, received: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(received)

    def start(self) -> SmtpTestServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        assert self._credentials is not None
        user, password = self._credentials
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # auth_data becomes session.auth_data: the user only, so no repr shows the password.
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)
