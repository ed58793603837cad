"""Secrets: each one named in the settings by the environment variable that holds it."""

from __future__ import annotations

import os

from order_export_tui.settings.model import Settings

# --- secrets -----------------------------------------------------------------------------------


def secret_value(name_of_env_var: str) -> str | None:
    """The secret held by that environment variable; None when it is unset or empty."""
    return os.environ.get(name_of_env_var) or None


def required_secrets(settings: Settings) -> list[tuple[str, str]]:
    """(dotted key, environment variable name) of each secret the current configuration needs."""
    needed: list[tuple[str, str]] = []
    if settings.erp.source == "business_central":
        bc_secret = settings.erp.business_central.client_secret_env
        needed.append(("erp.business_central.client_secret_env", bc_secret))
    if settings.destination.app == "dotdigital":
        needed.append(("dotdigital.password_env", settings.dotdigital.password_env))
    elif settings.destination.app == "mailchimp":
        needed.append(("mailchimp.api_key_env", settings.mailchimp.api_key_env))
    if settings.task.send_email_on_failure and settings.email.username != "":
        needed.append(("email.password_env", settings.email.password_env))
    if settings.webhook.enabled:
        needed.append(("webhook.secret_env", settings.webhook.secret_env))
    return needed


def missing_secrets(settings: Settings) -> list[str]:
    """One line per needed secret whose environment variable is unset or empty."""
    return [
        f"{key}: environment variable {name} is not set"
        for key, name in required_secrets(settings)
        if secret_value(name) is None
    ]
