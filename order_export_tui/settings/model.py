"""The settings model: one dataclass per TOML table of interfaces.md §2, and the paths in it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from order_export_tui.settings.connectors import Connector, registry

DEFAULT_SETTINGS_FILE = "settings.toml"
SETTINGS_ENV_VAR = "ORDER_EXPORT_SETTINGS"

EMAIL_SECURITY = ("none", "starttls", "tls")
WEBHOOK_SCHEMES = ("x-signature", "standard-webhooks")


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
    request_timeout_seconds: int = 30


@dataclass
class WebstoreSettings:
    name: str = "Demo webstore"


# --- connector sections ------------------------------------------------------------------------


def _sections(
    connectors: tuple[Connector[Any], ...],
    given: dict[str, Any] | None,
    by_attribute: dict[str, Any],
    owner: str,
) -> dict[str, Any]:
    """Connector name -> its settings: the defaults, then `given`, then what `by_attribute`
    names (a connector's table, or one key of a connector that keeps its keys in `owner`'s)."""
    sections = {c.name: c.settings() for c in connectors}
    sections.update(given or {})
    for attribute, value in by_attribute.items():
        connector = _owner_of(connectors, attribute)
        if connector is None:
            raise TypeError(f"{owner} has no connector setting {attribute!r}")
        if connector.flat:
            sections[connector.name] = replace(sections[connector.name], **{attribute: value})
        else:
            sections[connector.name] = value
    return sections


def _owner_of(connectors: tuple[Connector[Any], ...], attribute: str) -> Connector[Any] | None:
    for connector in connectors:
        if connector.flat and attribute in connector.key_names():
            return connector
        if not connector.flat and connector.section.rsplit(".", 1)[-1] == attribute:
            return connector
    return None


def _section_attribute(
    connectors: tuple[Connector[Any], ...], sections: dict[str, Any], attribute: str
) -> Any:
    connector = _owner_of(connectors, attribute)
    if connector is None or connector.name not in sections:
        raise AttributeError(attribute)
    section = sections[connector.name]
    return getattr(section, attribute) if connector.flat else section


@dataclass(init=False)
class ErpSettings:
    """[erp]: `source`, and each source connector's settings (`erp.business_central`, and
    `erp.demo_database` of the demo, which keeps its key in [erp] itself)."""

    source: str
    sections: dict[str, Any]  # source connector name -> its settings

    def __init__(
        self, source: str = "demo", sections: dict[str, Any] | None = None, **by_attribute: Any
    ) -> None:
        self.source = source
        self.sections = _sections(registry().sources, sections, by_attribute, "erp")

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") or attribute == "sections":
            raise AttributeError(attribute)
        return _section_attribute(registry().sources, self.sections, attribute)


@dataclass
class DestinationSettings:
    app: str = "file"


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
    scheme: str = "x-signature"
    tolerance_seconds: int = 300


@dataclass
class MonitoringSettings:
    listen: str = ""


@dataclass
class VerifySettings:
    interval_hours: int = 24  # 0: the daemon never verifies by itself
    repair: bool = True


@dataclass
class StorageSettings:
    state_database: str = "data/state.sqlite"
    database_password_env: str = ""  # with a PostgreSQL state_database: its password's variable
    logs_dir: str = "logs"
    control_socket: str = "data/order-export.sock"


@dataclass(init=False)
class Settings:
    """The whole file. Each destination connector's table is an attribute too
    (`settings.dotdigital`); `Connector.section_of(settings)` is the typed way to read one."""

    task: TaskSettings
    webstore: WebstoreSettings
    erp: ErpSettings
    destination: DestinationSettings
    email: EmailSettings
    webhook: WebhookSettings
    monitoring: MonitoringSettings
    storage: StorageSettings
    verify: VerifySettings
    # The settings file's absolute path; not a TOML key. Relative paths resolve against its folder.
    path: Path
    sections: dict[str, Any]  # destination connector name -> its settings

    def __init__(
        self,
        task: TaskSettings | None = None,
        webstore: WebstoreSettings | None = None,
        erp: ErpSettings | None = None,
        destination: DestinationSettings | None = None,
        email: EmailSettings | None = None,
        webhook: WebhookSettings | None = None,
        monitoring: MonitoringSettings | None = None,
        storage: StorageSettings | None = None,
        path: Path | None = None,
        sections: dict[str, Any] | None = None,
        verify: VerifySettings | None = None,
        **by_table: Any,
    ) -> None:
        self.task = task or TaskSettings()
        self.webstore = webstore or WebstoreSettings()
        self.erp = erp or ErpSettings()
        self.destination = destination or DestinationSettings()
        self.email = email or EmailSettings()
        self.webhook = webhook or WebhookSettings()
        self.monitoring = monitoring or MonitoringSettings()
        self.storage = storage or StorageSettings()
        self.verify = verify or VerifySettings()
        self.path = path if path is not None else Path.cwd() / DEFAULT_SETTINGS_FILE
        self.sections = _sections(registry().destinations, sections, by_table, "settings")

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") or attribute == "sections":
            raise AttributeError(attribute)
        return _section_attribute(registry().destinations, self.sections, attribute)

    @property
    def state_database_path(self) -> Path:
        return resolve_path(self, self.storage.state_database)

    @property
    def control_socket_path(self) -> Path:
        return resolve_path(self, self.storage.control_socket)

    @property
    def logs_dir_path(self) -> Path:
        return resolve_path(self, self.storage.logs_dir)


# The tables that are not a connector's, in the documented order (each destination's table
# follows `destination`). ``path`` and ``sections`` are deliberately not among them.
CORE_TABLES: dict[str, type] = {
    "task": TaskSettings,
    "webstore": WebstoreSettings,
    "erp": ErpSettings,
    "destination": DestinationSettings,
    "email": EmailSettings,
    "webhook": WebhookSettings,
    "monitoring": MonitoringSettings,
    "verify": VerifySettings,
    "storage": StorageSettings,
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


def shown_path(settings: Settings, value: str) -> str:
    """A path key's value as an operator reads it: relative to the settings folder when it
    lies inside it (stable in screenshots, shorter on screen), else as resolved."""
    path = resolve_path(settings, value)
    try:
        return str(path.resolve().relative_to(settings.path.parent.resolve()))
    except ValueError:
        return str(path)
