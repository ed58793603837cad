"""How a webhook request proves it comes from the webstore (interfaces.md §4).

Each scheme checks in two steps, so a forged request costs as little as possible:
`check_headers` before a byte of the body is read (a missing or ill-formed header, or a
Standard Webhooks timestamp outside the tolerance, is refused at once), then `verify` with
the body. `x-signature` (the default) is an HMAC of the body alone: it proves the sender but
not when it signed, so a captured request can be replayed. `standard-webhooks` signs the
message id and a timestamp too, and is verified with the specification's reference library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from order_export_tui.settings import webhook_secret_key, webhook_secret_problem

X_SIGNATURE = "x-signature"
STANDARD_WEBHOOKS = "standard-webhooks"

# The reference library's own window (standardwebhooks 1.x); a wider `tolerance_seconds` is
# honoured by checking the signatures with the library's `sign` instead of `verify`.
LIBRARY_TOLERANCE_SECONDS = 300

_X_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,256}")  # printable ASCII, no space
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE_ITEM = re.compile(r"v[0-9]{1,3},[A-Za-z0-9+/]{1,200}={0,2}")
MAX_SIGNATURES = 16


class WeakSecretError(ValueError):
    """The secret must not guard the webhook; the message says why (never quoting it)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """`refusal`: why the request is answered 401 (None: go on). `identity`: the event's
    identity when the scheme carries one (Standard Webhooks' `webhook-id`)."""

    refusal: str | None = None
    identity: str | None = None


class SignatureScheme(Protocol):
    name: str

    def check_headers(self, headers: Mapping[str, str], now: datetime) -> Verdict: ...

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool: ...


def signature_for(secret: str, body: bytes) -> str:
    """The `X-Signature` value the webstore sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class XSignature:
    name = X_SIGNATURE

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def check_headers(self, headers: Mapping[str, str], now: datetime) -> Verdict:
        if _X_SIGNATURE.fullmatch(headers.get("x-signature", "").strip()) is None:
            return Verdict("missing or ill-formed X-Signature (sha256=<64 hex digits>)")
        return Verdict()

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        match = _X_SIGNATURE.fullmatch(headers.get("x-signature", "").strip())
        if match is None:
            return False
        expected = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), match.group(1).lower().encode())


class StandardWebhooks:
    name = STANDARD_WEBHOOKS

    def __init__(self, secret: str, tolerance_seconds: int) -> None:
        key = webhook_secret_key(STANDARD_WEBHOOKS, secret)
        if key is None:
            raise WeakSecretError(webhook_secret_problem(STANDARD_WEBHOOKS, secret))
        self._webhook = Webhook(key)
        self._tolerance = tolerance_seconds

    def check_headers(self, headers: Mapping[str, str], now: datetime) -> Verdict:
        webhook_id = headers.get("webhook-id", "")
        if _WEBHOOK_ID.fullmatch(webhook_id) is None:
            return Verdict("missing or ill-formed webhook-id")
        stamp = headers.get("webhook-timestamp", "")
        if _TIMESTAMP.fullmatch(stamp) is None:
            return Verdict("missing or ill-formed webhook-timestamp (seconds since the epoch)")
        if abs(now.timestamp() - int(stamp)) > self._tolerance:
            return Verdict(f"webhook-timestamp is more than {self._tolerance} seconds from now")
        items = headers.get("webhook-signature", "").split()
        if not items or len(items) > MAX_SIGNATURES:
            return Verdict("missing or ill-formed webhook-signature")
        if any(_SIGNATURE_ITEM.fullmatch(item) is None for item in items):
            return Verdict("missing or ill-formed webhook-signature")
        if not any(item.startswith("v1,") for item in items):
            return Verdict("webhook-signature has no v1 signature")
        return Verdict(identity=webhook_id)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        wanted = {
            name: headers.get(name, "")
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        # One space between signatures: the library splits on exactly that.
        wanted["webhook-signature"] = " ".join(wanted["webhook-signature"].split())
        stamp = int(wanted["webhook-timestamp"])
        try:
            skew = abs(datetime.now(UTC).timestamp() - stamp)
            if skew <= LIBRARY_TOLERANCE_SECONDS:
                self._webhook.verify(body, wanted, json_parse=False)
                return True
            return self._verify_signatures(body, wanted, stamp)
        except (WebhookVerificationError, ValueError, OverflowError):
            # ValueError covers a body that is not UTF-8 and base64 that does not decode.
            return False

    def _verify_signatures(self, body: bytes, headers: dict[str, str], stamp: int) -> bool:
        """The library's signature (its `sign`) against each v1 signature in the header."""
        expected = self._webhook.sign(
            headers["webhook-id"], datetime.fromtimestamp(stamp, UTC), body.decode()
        )
        expected_bytes = base64.b64decode(expected.split(",", 1)[1])
        for item in headers["webhook-signature"].split():
            version, _, signature = item.partition(",")
            if version != "v1":
                continue
            try:
                given = base64.b64decode(signature)
            except binascii.Error:
                continue
            if hmac.compare_digest(expected_bytes, given):
                return True
        return False


def signature_scheme(scheme: str, secret: str, tolerance_seconds: int) -> SignatureScheme:
    """The configured scheme; `WeakSecretError` for a secret that must not be used."""
    problem = webhook_secret_problem(scheme, secret)
    if problem is not None:
        raise WeakSecretError(f"the webhook secret {problem}")
    if scheme == STANDARD_WEBHOOKS:
        return StandardWebhooks(secret, tolerance_seconds)
    return XSignature(secret)
