"""What each settings key means, as the form and the saved file's comments say it.

The core keys are described here; each connector describes its own section, and the keys that
choose a connector (`erp.source`, `destination.app`) list what the registry holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from order_export_tui.settings.connectors import Connector, registry

_CORE_DESCRIPTIONS: dict[str, str] = {
    "task.run_on_schedule": (
        "Run the Order data export task automatically according to the configured schedule, "
        "or disable it to allow only manual start of the task."
    ),
    "task.run_interval_minutes": (
        "The time interval in minutes when the task should run automatically (0 when run time "
        "is used)."
    ),
    "task.run_time": (
        "The fixed time (HH:MM, server time) when the task should run automatically once a day "
        '("" when the interval is used).'
    ),
    "task.send_email_on_failure": (
        "E-mail the webstore administrator when the task fails: the task, the webstore, when it "
        "failed and the error message."
    ),
    "task.max_archived_log_files": (
        "The maximum number of log files to store; when exceeded, the oldest log file is removed."
    ),
    "task.batch_size": "The quantity of orders that should be handled in one batch.",
    "task.max_days_to_export": (
        "The maximum number of days to export sales orders from the ERP system; older orders are "
        "neither exported nor re-checked."
    ),
    "task.max_retry_interval_seconds": (
        "The maximum interval between retries (seconds): all retries of one item happen within "
        "this interval."
    ),
    "task.max_retries": "The maximum retries count within the retry interval.",
    "task.max_items_to_skip": (
        "How many sales orders can be skipped in one run before the task fails."
    ),
    "task.request_timeout_seconds": (
        "How long (seconds) one request to the ERP or the marketing platform may wait for its "
        "answer before it counts as failed (and is retried); connecting gets at most 10 s."
    ),
    "webstore.name": "The webstore's name, shown in failure e-mails and on the dashboard.",
    "email.smtp_host": "The SMTP server that sends failure e-mails.",
    "email.smtp_port": "The SMTP server's port.",
    "email.security": 'SMTP connection security: "none", "starttls" or "tls".',
    "email.username": 'SMTP user name ("" sends without logging in).',
    "email.password_env": "Name of the environment variable that holds the SMTP password.",
    "email.sender": "The failure e-mail's From address.",
    "email.to": "The administrators' e-mail addresses that receive failure e-mails.",
    "webhook.enabled": (
        "Accept real-time orders and payment statuses from the webstore (on once the webstore "
        "has the shared secret)."
    ),
    "webhook.listen": 'The address the webhook intake listens on, "host:port" ("[::1]:8787").',
    "webhook.secret_env": (
        "Name of the environment variable that holds the webhook's shared HMAC secret."
    ),
    "webhook.scheme": (
        'How requests are signed: "x-signature" (HMAC of the body) or "standard-webhooks" '
        "(signed id and timestamp: a captured request cannot be replayed later)."
    ),
    "webhook.tolerance_seconds": (
        "standard-webhooks: a request whose timestamp is further than this from now is refused."
    ),
    "monitoring.listen": (
        'Where GET /healthz and GET /metrics are served, "host:port" (e.g. "127.0.0.1:9187"); '
        '"" turns monitoring off.'
    ),
    "verify.interval_hours": (
        "The daemon (or hosting dashboard) verifies the platform's copy against the ERP every "
        "N hours; 0 = never by itself (`order-export verify` still works)."
    ),
    "verify.repair": "Repair what a scheduled verify finds (sent like a resend).",
    "storage.state_database": (
        "The state database that remembers what was exported: a SQLite file, or a"
        " postgresql:// URL without a password, shared by several daemons."
    ),
    "storage.database_password_env": (
        "Name of the environment variable that holds the PostgreSQL state database's"
        ' password; "" when the URL needs none.'
    ),
    "storage.logs_dir": "The folder that holds the per-run log files.",
    "storage.control_socket": (
        "The Unix socket (mode 0600) on which the running daemon or dashboard is steered."
    ),
}

# What each table is for: the comment above its header in the saved file.
_CORE_TABLE_DESCRIPTIONS: dict[str, str] = {
    "task": "The Order data export task, as the webstore admin knows it.",
    "webstore": "The webstore whose orders are exported.",
    "erp": "The ERP system that the orders are read from.",
    "destination": "The marketing platform that the orders are sent to.",
    "email": "The failure e-mail (task.send_email_on_failure = true).",
    "webhook": "Real-time orders and payment statuses from the webstore.",
    "monitoring": "Health and metrics for monitoring tools.",
    "verify": "Reading the platform's copy back and comparing it with the ERP.",
    "storage": "What order-export keeps on disk.",
}


def _choices(connectors: tuple[Connector[Any], ...]) -> str:
    """'"demo" (embedded SQLite ERP) or "business_central"': each name with its summary."""
    named = [json.dumps(c.name) + (f" ({c.summary})" if c.summary else "") for c in connectors]
    return " or ".join([", ".join(named[:-1]), named[-1]]) if len(named) > 1 else "".join(named)


def setting_descriptions() -> dict[str, str]:
    """Dotted key -> what it means, for every key of the file."""
    reg = registry()
    described: dict[str, str] = {}
    for key, text in _CORE_DESCRIPTIONS.items():
        if key == "email.smtp_host":  # the connectors' keys come before the e-mail table
            described["erp.source"] = f"Where orders come from: {_choices(reg.sources)}."
            described.update(_connector_descriptions(reg.sources))
            described["destination.app"] = f"Where orders go: {_choices(reg.destinations)}."
            described.update(_connector_descriptions(reg.destinations))
        described[key] = text
    return described


def _connector_descriptions(connectors: tuple[Connector[Any], ...]) -> dict[str, str]:
    return {c.key(name): c.descriptions[name] for c in connectors for name in c.key_names()}


def table_descriptions() -> dict[str, str]:
    """Dotted table -> what it is for."""
    reg = registry()
    described: dict[str, str] = {}
    for table, text in _CORE_TABLE_DESCRIPTIONS.items():
        described[table] = text
        connectors = {"erp": reg.sources, "destination": reg.destinations}.get(table, ())
        described.update({c.section: c.table_description for c in connectors if not c.flat})
    return described


class _Live(Mapping[str, str]):
    """A mapping read from the registry each time, so a connector installed later is in it."""

    def __init__(self, read: Callable[[], dict[str, str]]) -> None:
        self._read = read

    def __getitem__(self, key: str) -> str:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


SETTING_DESCRIPTIONS: Mapping[str, str] = _Live(setting_descriptions)
TABLE_DESCRIPTIONS: Mapping[str, str] = _Live(table_descriptions)
