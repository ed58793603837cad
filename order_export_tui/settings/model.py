"""The settings model: one dataclass per TOML table of interfaces.md §2, and the paths in it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SETTINGS_FILE = "settings.toml"
SETTINGS_ENV_VAR = "ORDER_EXPORT_SETTINGS"

ERP_SOURCES = ("demo", "business_central")
DESTINATION_APPS = ("dotdigital", "mailchimp", "file")
DOTDIGITAL_REGIONS = ("r1", "r2", "r3")
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


@dataclass
class BusinessCentralSettings:
    base_url: str = ""
    company_id: str = ""
    tenant_id: str = ""
    client_id: str = ""
    client_secret_env: str = "BC_CLIENT_SECRET"
    token_url: str = ""
    shipment_tracking_field: str = ""
    shipment_tracking_api: str = ""
    tracking_url_template: str = ""


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
    contact_list_id: int = 0
    import_timeout_seconds: int = 900


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
    scheme: str = "x-signature"
    tolerance_seconds: int = 300


@dataclass
class MonitoringSettings:
    listen: str = ""


@dataclass
class StorageSettings:
    state_database: str = "data/state.sqlite"
    logs_dir: str = "logs"
    control_socket: str = "data/order-export.sock"


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
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    # The settings file's absolute path; not a TOML key. Relative paths resolve against its folder.
    path: Path = field(default_factory=lambda: Path.cwd() / DEFAULT_SETTINGS_FILE)

    @property
    def state_database_path(self) -> Path:
        return resolve_path(self, self.storage.state_database)

    @property
    def control_socket_path(self) -> Path:
        return resolve_path(self, self.storage.control_socket)

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
    "monitoring": MonitoringSettings,
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
