"""Typed settings from ``settings.toml``: loading, validation, atomic saving, secrets.

The file layout is pinned by ``interfaces.md`` section 2. Secrets never live in the file: each
``*_env`` key names the environment variable that holds one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import ipaddress
import json
import os
import re
import secrets
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w

DEFAULT_SETTINGS_FILE = "settings.toml"
SETTINGS_ENV_VAR = "ORDER_EXPORT_SETTINGS"

ERP_SOURCES = ("demo", "business_central")
DESTINATION_APPS = ("dotdigital", "mailchimp", "file")
DOTDIGITAL_REGIONS = ("r1", "r2", "r3")
EMAIL_SECURITY = ("none", "starttls", "tls")


class SettingsError(Exception):
    """Settings that cannot be used; ``problems`` holds one ``"<key>: <message>"`` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --- the settings, one dataclass per TOML table, fields in the documented order ---------------


@dataclass
class TaskSettings:
    run_on_schedule: bool = True
    run_interval_minutes: int = 60
    run_time: str = ""
    send_email_on_failure: bool = False
    max_archived_log_files: int = 10
    batch_size: int = 100
    max_days_to_export: int = 30
    max_retry_interval_seconds: int = 60
    max_retries: int = 3
    max_items_to_skip: int = 10


@dataclass
class WebstoreSettings:
    name: str = "Demo webstore"


@dataclass
class BusinessCentralSettings:
    base_url: str = ""
    company_id: str = ""
    tenant_id: str = ""
    client_id: str = ""
    client_secret_env: str = "BC_CLIENT_SECRET"
    token_url: str = ""


@dataclass
class ErpSettings:
    source: str = "demo"
    demo_database: str = "data/erp-demo.sqlite"
    business_central: BusinessCentralSettings = field(default_factory=BusinessCentralSettings)


@dataclass
class DestinationSettings:
    app: str = "file"


@dataclass
class DotdigitalSettings:
    region: str = "r1"
    base_url: str = ""
    api_user: str = ""
    password_env: str = "DOTDIGITAL_API_PASSWORD"
    collection: str = "Orders"
    create_missing_contacts: bool = True


@dataclass
class MailchimpSettings:
    api_key_env: str = "MAILCHIMP_API_KEY"
    base_url: str = ""
    store_id: str = ""
    list_id: str = ""
    max_connections: int = 8


@dataclass
class FileSettings:
    path: str = "exports/orders.jsonl"


@dataclass
class EmailSettings:
    smtp_host: str = "localhost"
    smtp_port: int = 25
    security: str = "none"
    username: str = ""
    password_env: str = "SMTP_PASSWORD"
    sender: str = "order-export@localhost"
    to: list[str] = field(default_factory=lambda: ["admin@example.com"])


@dataclass
class WebhookSettings:
    enabled: bool = False
    listen: str = "127.0.0.1:8787"
    secret_env: str = "ORDER_EXPORT_WEBHOOK_SECRET"


@dataclass
class StorageSettings:
    state_database: str = "data/state.sqlite"
    logs_dir: str = "logs"


@dataclass
class Settings:
    task: TaskSettings = field(default_factory=TaskSettings)
    webstore: WebstoreSettings = field(default_factory=WebstoreSettings)
    erp: ErpSettings = field(default_factory=ErpSettings)
    destination: DestinationSettings = field(default_factory=DestinationSettings)
    dotdigital: DotdigitalSettings = field(default_factory=DotdigitalSettings)
    mailchimp: MailchimpSettings = field(default_factory=MailchimpSettings)
    file: FileSettings = field(default_factory=FileSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    # The settings file's absolute path; not a TOML key. Relative paths resolve against its folder.
    path: Path = field(default_factory=lambda: Path.cwd() / DEFAULT_SETTINGS_FILE)

    @property
    def state_database_path(self) -> Path:
        return resolve_path(self, self.storage.state_database)

    @property
    def logs_dir_path(self) -> Path:
        return resolve_path(self, self.storage.logs_dir)

    @property
    def demo_database_path(self) -> Path:
        return resolve_path(self, self.erp.demo_database)

    @property
    def file_path(self) -> Path:
        return resolve_path(self, self.file.path)


# The TOML tables, in the documented order. ``path`` is deliberately not one of them.
SECTIONS: dict[str, type] = {
    "task": TaskSettings,
    "webstore": WebstoreSettings,
    "erp": ErpSettings,
    "destination": DestinationSettings,
    "dotdigital": DotdigitalSettings,
    "mailchimp": MailchimpSettings,
    "file": FileSettings,
    "email": EmailSettings,
    "webhook": WebhookSettings,
    "storage": StorageSettings,
}


SETTING_DESCRIPTIONS: dict[str, str] = {
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
    "webstore.name": "The webstore's name, shown in failure e-mails and on the dashboard.",
    "erp.source": 'Where orders come from: "demo" (embedded SQLite ERP) or "business_central".',
    "erp.demo_database": "The embedded demo ERP's SQLite database file.",
    "erp.business_central.base_url": (
        "Business Central API v2.0 base URL, e.g. "
        "https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0"
    ),
    "erp.business_central.company_id": "The Business Central company's id.",
    "erp.business_central.tenant_id": "The Microsoft Entra tenant id of the Business Central.",
    "erp.business_central.client_id": "The app registration's client id.",
    "erp.business_central.client_secret_env": (
        "Name of the environment variable that holds the client secret."
    ),
    "erp.business_central.token_url": (
        'OAuth token URL; "" uses the Microsoft identity platform token URL for the tenant.'
    ),
    "destination.app": (
        'Where orders go: "dotdigital", "mailchimp" or "file" (dry run: writes the exact '
        "request bodies)."
    ),
    "dotdigital.region": "Dotdigital region: r1 Europe, r2 North America, r3 Asia Pacific.",
    "dotdigital.base_url": 'Overrides https://<region>-api.dotdigital.com ("" for the default).',
    "dotdigital.api_user": "The Dotdigital API user (HTTP Basic auth user name).",
    "dotdigital.password_env": (
        "Name of the environment variable that holds the API user's password."
    ),
    "dotdigital.collection": "The Insight data collection that holds the orders.",
    "dotdigital.create_missing_contacts": (
        "Create a Dotdigital contact for an order whose e-mail address is not a contact yet."
    ),
    "mailchimp.api_key_env": (
        "Name of the environment variable that holds the API key (its -usN suffix selects the "
        "data centre)."
    ),
    "mailchimp.base_url": 'Overrides https://<dc>.api.mailchimp.com/3.0 ("" for the default).',
    "mailchimp.store_id": "The Mailchimp e-commerce store id.",
    "mailchimp.list_id": "The audience that the store is connected to.",
    "mailchimp.max_connections": (
        "Simultaneous connections to Mailchimp (it allows 10 per API key)."
    ),
    "file.path": "The JSON Lines file the file destination (dry run) writes request bodies to.",
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
    "storage.state_database": "The state database (SQLite) that remembers what was exported.",
    "storage.logs_dir": "The folder that holds the per-run log files.",
}


# --- paths -------------------------------------------------------------------------------------


def default_settings_path(cli_value: str | None) -> Path:
    """The ``--settings`` value, else ``$ORDER_EXPORT_SETTINGS``, else ``./settings.toml``."""
    for candidate in (cli_value, os.environ.get(SETTINGS_ENV_VAR)):
        if candidate:
            return Path(candidate).expanduser()
    return Path(DEFAULT_SETTINGS_FILE)


def resolve_path(settings: Settings, value: str) -> Path:
    """A path from the settings file; relative ones are relative to that file's own folder."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    return settings.path.parent / path


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


# --- validation rules --------------------------------------------------------------------------

_RUN_TIME = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACKETED_LISTEN = re.compile(r"\[([^\]]+)\]:(\d{1,5})")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")


@dataclass(frozen=True)
class _Rule:
    """What a key must hold: ``"<key>: <expect> (got <value>)"`` when ``accepts`` says no."""

    expect: str
    accepts: Callable[[Any], bool]


def _is_int(value: object) -> bool:
    # TOML booleans arrive as Python bools, which are ints; they are not counts.
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(low: int, high: int) -> _Rule:
    return _Rule(
        f"must be an integer from {low} to {high}",
        lambda v: _is_int(v) and low <= v <= high,
    )


def _one_of(*allowed: str) -> _Rule:
    listed = ", ".join(json.dumps(choice) for choice in allowed)
    return _Rule(f"must be one of {listed}", lambda v: isinstance(v, str) and v in allowed)


def is_valid_email(address: str) -> bool:
    """A plain ``local@domain`` address: one "@", no spaces, a domain with no empty labels."""
    if address.count("@") != 1 or any(ch.isspace() for ch in address):
        return False
    local, domain = address.split("@")
    return bool(local) and bool(domain) and "" not in domain.split(".")


def is_url(value: str) -> bool:
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:8787"`` for IPv6); ValueError when malformed."""
    bracketed = _BRACKETED_LISTEN.fullmatch(value)
    if bracketed:
        host, port_text = bracketed.groups()
        ipaddress.IPv6Address(host)  # raises ValueError for a non-IPv6 host in brackets
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or ":" in host or any(ch.isspace() for ch in host):
            raise ValueError(f"not host:port: {value!r}")
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be 1 to 65535: {value!r}")
    return host, int(port_text)


def _is_listen(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_listen(value)
    except ValueError:
        return False
    return True


_BOOL = _Rule("must be true or false", lambda v: isinstance(v, bool))
_STR = _Rule("must be a string", lambda v: isinstance(v, str))
_NON_EMPTY_STR = _Rule(
    "must be a non-empty string", lambda v: isinstance(v, str) and bool(v.strip())
)
_URL = _Rule(
    'must be "" or a URL starting with http:// or https://',
    lambda v: isinstance(v, str) and (v == "" or is_url(v)),
)
_ENV = _Rule(
    "must be an environment variable name (letters, digits and _, not starting with a digit)",
    lambda v: isinstance(v, str) and _ENV_NAME.fullmatch(v) is not None,
)
_EMAIL = _Rule(
    "must be an e-mail address like name@example.com",
    lambda v: isinstance(v, str) and is_valid_email(v),
)
_EMAIL_LIST = _Rule(
    'must be a list of e-mail addresses, e.g. ["admin@example.com"]',
    lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
)

_RULES: dict[str, _Rule] = {
    "task.run_on_schedule": _BOOL,
    "task.run_interval_minutes": _integer(0, 10080),
    "task.run_time": _Rule(
        'must be "" or a time "HH:MM" from 00:00 to 23:59',
        lambda v: isinstance(v, str) and (v == "" or _RUN_TIME.fullmatch(v) is not None),
    ),
    "task.send_email_on_failure": _BOOL,
    "task.max_archived_log_files": _integer(1, 1000),
    "task.batch_size": _integer(1, 10000),
    "task.max_days_to_export": _integer(1, 3650),
    "task.max_retry_interval_seconds": _integer(0, 86400),
    "task.max_retries": _integer(0, 100),
    "task.max_items_to_skip": _integer(0, 1000000),
    "webstore.name": _NON_EMPTY_STR,
    "erp.source": _one_of(*ERP_SOURCES),
    "erp.demo_database": _STR,
    "erp.business_central.base_url": _URL,
    "erp.business_central.company_id": _STR,
    "erp.business_central.tenant_id": _STR,
    "erp.business_central.client_id": _STR,
    "erp.business_central.client_secret_env": _ENV,
    "erp.business_central.token_url": _URL,
    "destination.app": _one_of(*DESTINATION_APPS),
    "dotdigital.region": _one_of(*DOTDIGITAL_REGIONS),
    "dotdigital.base_url": _URL,
    "dotdigital.api_user": _STR,
    "dotdigital.password_env": _ENV,
    "dotdigital.collection": _NON_EMPTY_STR,
    "dotdigital.create_missing_contacts": _BOOL,
    "mailchimp.api_key_env": _ENV,
    "mailchimp.base_url": _URL,
    "mailchimp.store_id": _STR,
    "mailchimp.list_id": _STR,
    "mailchimp.max_connections": _integer(1, 10),
    "file.path": _STR,
    "email.smtp_host": _STR,
    "email.smtp_port": _integer(1, 65535),
    "email.security": _one_of(*EMAIL_SECURITY),
    "email.username": _STR,
    "email.password_env": _ENV,
    "email.sender": _EMAIL,
    "email.to": _EMAIL_LIST,
    "webhook.enabled": _BOOL,
    "webhook.listen": _Rule(
        'must be "host:port" with a port from 1 to 65535 (IPv6 as "[::1]:8787")', _is_listen
    ),
    "webhook.secret_env": _ENV,
    "storage.state_database": _NON_EMPTY_STR,
    "storage.logs_dir": _NON_EMPTY_STR,
}


def _show(value: object) -> str:
    """A value as the operator wrote it, shortened; a table is named, not dumped."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, list):
        shown = [_show(item) for item in value[:5]]
        text = "[" + ", ".join(shown + (["..."] if len(value) > 5 else [])) + "]"
    elif isinstance(value, dt.date | dt.time):
        text = value.isoformat()
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _problem(key: str, message: str, value: object) -> str:
    return f"{key}: {message} (got {_show(value)})"


# --- structure: tables, keys, unknown names ----------------------------------------------------


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _all_paths() -> list[str]:
    """Every known dotted table and key path."""
    paths: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        for name, kind in _field_types(cls).items():
            paths.append(prefix + name)
            if dataclasses.is_dataclass(kind):
                walk(kind, f"{prefix}{name}.")

    for section, cls in SECTIONS.items():
        paths.append(section)
        walk(cls, section + ".")
    return paths


def _unknown(prefix: str, name: str, known: list[str], value: object) -> str:
    what = "unknown table" if isinstance(value, dict) else "unknown key"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        suggestions = [prefix + close[0]]
    else:
        # A right name in the wrong table: a key written above its table header, say.
        suggestions = [
            path
            for path in _all_paths()
            if path.rsplit(".", 1)[-1] == name and path != prefix + name
        ]
        # Prefer the nearest: erp.base_url most likely meant erp.business_central.base_url.
        suggestions = [path for path in suggestions if path.startswith(prefix)] or suggestions
    hint = f" (did you mean {' or '.join(suggestions)}?)" if suggestions else ""
    return f"{prefix}{name}: {what}{hint}"


@dataclass
class _Reader:
    """Walks the TOML data; collects problems and the keys whose values were rejected."""

    problems: list[str] = field(default_factory=list)
    rejected: set[str] = field(default_factory=set)

    def reject(self, key: str, problem: str) -> None:
        self.problems.append(problem)
        self.rejected.add(key)

    def table(self, cls: type, data: Mapping[str, Any], prefix: str) -> Any:
        types = _field_types(cls)
        values: dict[str, Any] = {}
        for name, value in data.items():
            key = prefix + name
            kind = types.get(name)
            if kind is None:
                self.reject(key, _unknown(prefix, name, list(types), value))
            elif dataclasses.is_dataclass(kind):
                if isinstance(value, dict):
                    values[name] = self.table(kind, value, key + ".")
                else:
                    self.reject(key, _problem(key, "must be a table", value))
            else:
                rule = _RULES[key]
                if rule.accepts(value):
                    values[name] = list(value) if isinstance(value, list) else value
                else:
                    self.reject(key, _problem(key, rule.expect, value))
        return cls(**values)

    def root(self, data: Mapping[str, Any]) -> dict[str, Any]:
        sections: dict[str, Any] = {}
        for name, value in data.items():
            cls = SECTIONS.get(name)
            if cls is None:
                self.reject(name, _unknown("", name, list(SECTIONS), value))
            elif isinstance(value, dict):
                sections[name] = self.table(cls, value, name + ".")
            else:
                self.reject(name, _problem(name, "must be a table", value))
        return sections


# --- rules across keys -------------------------------------------------------------------------


def _cross_checks(s: Settings, rejected: set[str]) -> list[str]:
    """Rules that relate keys; a rule is skipped when a key it reads was already rejected."""
    problems: list[str] = []

    def usable(*keys: str) -> bool:
        # A whole table given as a scalar is rejected under the table's own name.
        return not any(key in rejected or key.split(".")[0] in rejected for key in keys)

    def require(key: str, value: str, condition: str) -> None:
        if usable(key) and not value.strip():
            problems.append(_problem(key, f"required when {condition}", value))

    task = s.task
    schedule_keys = ("task.run_on_schedule", "task.run_interval_minutes", "task.run_time")
    if task.run_on_schedule and usable(*schedule_keys):
        has_interval, has_time = task.run_interval_minutes > 0, task.run_time != ""
        if has_interval and has_time:
            problems.append(
                f"task.run_time: with run_on_schedule = true set either run_time or "
                f"run_interval_minutes, not both; set run_interval_minutes = 0 to run at a fixed "
                f"time (got {_show(task.run_time)} and run_interval_minutes = "
                f"{task.run_interval_minutes})"
            )
        elif not has_interval and not has_time:
            problems.append(
                "task.run_interval_minutes: with run_on_schedule = true set run_interval_minutes "
                'above 0 or a run_time "HH:MM"; neither is set '
                f"(got {task.run_interval_minutes} and run_time = {_show(task.run_time)})"
            )

    if usable("erp.source"):
        source = f'erp.source = "{s.erp.source}"'
        if s.erp.source == "demo":
            require("erp.demo_database", s.erp.demo_database, source)
        else:
            bc = s.erp.business_central
            require("erp.business_central.base_url", bc.base_url, source)
            require("erp.business_central.company_id", bc.company_id, source)
            if usable("erp.business_central.token_url") and not bc.token_url:
                require(
                    "erp.business_central.tenant_id", bc.tenant_id, f"{source} and no token_url"
                )
            require("erp.business_central.client_id", bc.client_id, source)

    if usable("destination.app"):
        app = f'destination.app = "{s.destination.app}"'
        if s.destination.app == "dotdigital":
            require("dotdigital.api_user", s.dotdigital.api_user, app)
        elif s.destination.app == "mailchimp":
            require("mailchimp.store_id", s.mailchimp.store_id, app)
            require("mailchimp.list_id", s.mailchimp.list_id, app)
        else:
            require("file.path", s.file.path, app)

    if usable("email.to"):
        problems.extend(
            _problem("email.to", "not a valid e-mail address", address)
            for address in s.email.to
            if not is_valid_email(address)
        )
    if task.send_email_on_failure and usable("task.send_email_on_failure"):
        if usable("email.to") and not s.email.to:
            problems.append(
                _problem("email.to", "needs an address when send_email_on_failure = true", [])
            )
        require("email.smtp_host", s.email.smtp_host, "send_email_on_failure = true")
    return problems


# --- public validation, loading and saving -----------------------------------------------------


def validate(data: Mapping[str, Any], path: Path) -> tuple[Settings | None, list[str]]:
    """Check TOML data the way the loader does: (settings, []) or (None, every problem)."""
    if not isinstance(data, Mapping):
        return None, [f"{path}: settings must be a table (got {_show(data)})"]
    reader = _Reader()
    sections = reader.root(data)
    settings = Settings(path=Path(os.path.abspath(path)), **sections)
    problems = reader.problems + _cross_checks(settings, reader.rejected)
    return (None, problems) if problems else (settings, [])


def settings_from_dict(data: Mapping[str, Any], path: Path) -> Settings:
    """Settings from TOML-shaped data; SettingsError lists every problem."""
    settings, problems = validate(data, path)
    if settings is None:
        raise SettingsError(problems)
    return settings


def validate_settings(settings: Settings) -> list[str]:
    """Every problem with (possibly edited) settings; [] when they are fine to save and use."""
    return validate(settings_to_dict(settings), settings.path)[1]


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """The TOML structure: tables and keys in the documented order."""
    return {name: dataclasses.asdict(getattr(settings, name)) for name in SECTIONS}


def _syntax_problem(path: Path, text: str, error: tomllib.TOMLDecodeError) -> str:
    message = str(error)
    position = _TOML_POSITION.search(message)
    if position:
        line, column = int(position.group(1)), int(position.group(2))
    else:
        # tomllib reports errors on the last statement "at end of document"; name that spot.
        line = text.count("\n") + 1
        column = len(text.rsplit("\n", 1)[-1]) + 1
    reason = _TOML_AT_END.sub("", _TOML_POSITION.sub("", message))
    return f"{path}: TOML syntax error at line {line}, column {column}: {reason}"


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError([f"{path}: settings file not found"]) from None
    except IsADirectoryError:
        raise SettingsError([f"{path}: is a folder, not a settings file"]) from None
    except OSError as error:
        raise SettingsError([f"{path}: cannot read settings file ({error.strerror})"]) from None
    try:
        return raw.decode("utf-8-sig")  # tolerate the BOM some Windows editors write
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SettingsError([f"{path}: not UTF-8 text (bad byte at line {line})"]) from None


def load_settings(path: Path | str) -> Settings:
    """Read and validate a settings file; SettingsError lists every problem. Never writes."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError([_syntax_problem(path, text, error)]) from None
    except RecursionError:
        raise SettingsError([f"{path}: TOML syntax error: values nested too deeply"]) from None
    return settings_from_dict(data, path)


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Validate, then atomically rewrite the settings file keeping its permission bits.

    Raises SettingsError (the file untouched) for invalid settings or when writing fails.
    """
    problems = validate_settings(settings)
    if problems:
        raise SettingsError(problems)
    target = Path(path) if path is not None else settings.path
    content = tomli_w.dumps(settings_to_dict(settings)).encode("utf-8")
    try:
        _atomic_write(target, content)
    except OSError as error:
        reason = error.strerror or str(error)
        raise SettingsError([f"{target}: cannot write settings file ({reason})"]) from None


def _atomic_write(target: Path, content: bytes) -> None:
    # Write through a symlink to its target, so the link itself survives the rename.
    target = Path(os.path.realpath(target))
    folder = target.parent
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    temp = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
    # A new file gets 0o644 less the umask, as any freshly created file would.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
            if old is not None:
                with contextlib.suppress(PermissionError):  # only root may give files away
                    os.fchown(handle.fileno(), old.st_uid, old.st_gid)
                os.fchmod(handle.fileno(), old.st_mode & 0o7777)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable. Some platforms and file systems cannot fsync a folder;
    # the new file is already in place then, so that is not a failure of the save.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
