"""Secrets: each one named in the settings by the environment variable that holds it."""

from __future__ import annotations

import base64
import binascii
import os

from order_export_tui.settings.connectors import chosen
from order_export_tui.settings.database_url import is_database_url
from order_export_tui.settings.model import Settings

# --- secrets -----------------------------------------------------------------------------------


def secret_value(name_of_env_var: str) -> str | None:
    """The secret held by that environment variable; None when it is unset or empty."""
    return os.environ.get(name_of_env_var) or None


def required_secrets(settings: Settings) -> list[tuple[str, str]]:
    """(dotted key, environment variable name) of each secret the current configuration needs."""
    needed: list[tuple[str, str]] = []
    for connector in chosen(settings):  # the source's, then the destination's
        section = connector.section_of(settings)
        for secret in connector.secrets:
            if secret.when is None or secret.when(section):
                needed.append((connector.key(secret.key), getattr(section, secret.key)))
    if settings.task.send_email_on_failure and settings.email.username != "":
        needed.append(("email.password_env", settings.email.password_env))
    if settings.webhook.enabled:
        needed.append(("webhook.secret_env", settings.webhook.secret_env))
    storage = settings.storage
    if is_database_url(storage.state_database) and storage.database_password_env:
        needed.append(("storage.database_password_env", storage.database_password_env))
    return needed


def missing_secrets(settings: Settings) -> list[str]:
    """One line per needed secret whose environment variable is unset or empty."""
    return [
        f"{key}: environment variable {name} is not set"
        for key, name in required_secrets(settings)
        if secret_value(name) is None
    ]


# --- the webhook's shared secret ---------------------------------------------------------------

MIN_WEBHOOK_SECRET_BYTES = 16
STANDARD_WEBHOOKS_PREFIX = "whsec_"


def webhook_secret_key(scheme: str, secret: str) -> bytes | None:
    """The HMAC key a webhook secret stands for under `scheme`; None when it is malformed
    (standard-webhooks: `whsec_` and base64, as the Standard Webhooks specification says)."""
    if scheme != "standard-webhooks":
        return secret.encode()
    if not secret.startswith(STANDARD_WEBHOOKS_PREFIX):
        return None
    try:
        return base64.b64decode(secret[len(STANDARD_WEBHOOKS_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return None


def webhook_secret_problem(scheme: str, secret: str) -> str | None:
    """Why this secret must not guard the webhook (never quoting it), or None."""
    key = webhook_secret_key(scheme, secret)
    if key is None:
        return "must be whsec_ followed by base64 (the Standard Webhooks secret format)"
    if len(key) < MIN_WEBHOOK_SECRET_BYTES:
        make = (
            "echo whsec_$(openssl rand -base64 32)"
            if scheme == "standard-webhooks"
            else "openssl rand -hex 32"
        )
        return (
            f"is shorter than {MIN_WEBHOOK_SECRET_BYTES} bytes; a short secret can be guessed"
            f" (make one with: {make})"
        )
    return None


def weak_secrets(settings: Settings) -> list[str]:
    """One line per set secret too weak to be used (the webhook's, when it is enabled)."""
    webhook = settings.webhook
    if not webhook.enabled:
        return []
    secret = secret_value(webhook.secret_env)
    if secret is None:
        return []  # missing_secrets names it
    problem = webhook_secret_problem(webhook.scheme, secret)
    if problem is None:
        return []
    return [f"webhook.secret_env: the secret in {webhook.secret_env} {problem}"]
