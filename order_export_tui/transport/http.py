"""What every HTTP client shares: its timeouts, and telling a transient failure from a
final one."""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime

import httpx

from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import TransientError

DEFAULT_REQUEST_TIMEOUT_SECONDS = 30.0  # task.request_timeout_seconds
MAX_CONNECT_TIMEOUT_SECONDS = 10.0

# A reset header above this is an absolute Unix time rather than a number of seconds.
_EPOCH_THRESHOLD = 1_000_000_000


def display_url(url: str) -> str:
    """A URL fit to show: without user-info (`user:password@`), query or fragment.

    By hand, not `urlsplit`: that refuses some malformed hosts, and this must never fail."""
    url = re.split(r"[?#]", url, maxsplit=1)[0]
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds the platform asks us to wait: `Retry-After` (seconds or HTTP date), else a
    rate-limit reset header (seconds, or a Unix time)."""
    now = time.time() if now is None else now
    value = headers.get("retry-after")
    if value is not None:
        value = value.strip()
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
        try:
            return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
        except (TypeError, ValueError):
            return None
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return max(number - now, 0.0) if number > _EPOCH_THRESHOLD else max(number, 0.0)
    return None


def is_transient_status(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


def raise_if_transient(response: httpx.Response, what: str) -> None:
    """Raise `TransientError` for 429 and 5xx; other statuses are for the caller to judge."""
    if is_transient_status(response.status_code):
        raise TransientError(
            f"{what}: HTTP {response.status_code}",
            retry_after=retry_after_seconds(response.headers),
        )


def request_timeout(seconds: float) -> httpx.Timeout:
    """Every platform client's timeouts, from `task.request_timeout_seconds`: that long for
    the answer (between two reads), for sending the body and for a free connection; at most
    10 s to connect."""
    return httpx.Timeout(seconds, connect=min(seconds, MAX_CONNECT_TIMEOUT_SECONDS))


def transport_failure(error: httpx.TransportError, what: str) -> TransientError:
    """A failure to get any answer, as a sentence naming the request: a timeout says which
    one ran out and after how long, not a bare `ReadTimeout:`."""
    timeouts = error.request.extensions.get("timeout", {}) if _has_request(error) else {}
    phases = {
        httpx.ConnectTimeout: ("connect", "could not connect within {}"),
        httpx.ReadTimeout: ("read", "timed out after {} waiting for the answer"),
        httpx.WriteTimeout: ("write", "timed out after {} sending the request"),
        httpx.PoolTimeout: ("pool", "found no free connection within {}"),
    }
    for kind, (phase, sentence) in phases.items():
        if isinstance(error, kind):
            limit = timeouts.get(phase)
            seconds = f"{limit:g}s" if isinstance(limit, int | float) else "its timeout"
            return TransientError(f"{what} {sentence.format(seconds)}")
    detail = redact(str(error)) or "no answer"
    return TransientError(f"{what}: {_failure_name(error)}: {detail}")


def _has_request(error: httpx.TransportError) -> bool:
    try:
        error.request  # noqa: B018 - raises when the error carries no request
    except RuntimeError:
        return False
    return True


def _failure_name(error: httpx.TransportError) -> str:
    names = {
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "the connection broke",
        httpx.ReadError: "the connection broke while reading the answer",
        httpx.WriteError: "the connection broke while sending",
    }
    for kind, name in names.items():
        if isinstance(error, kind):
            return name
    return type(error).__name__


async def send(client: httpx.AsyncClient, request: httpx.Request, what: str) -> httpx.Response:
    """Send one request; transport failures, 429 and 5xx become `TransientError`."""
    try:
        response = await client.send(request)
    except httpx.TransportError as error:
        raise transport_failure(error, what) from error
    raise_if_transient(response, what)
    return response
