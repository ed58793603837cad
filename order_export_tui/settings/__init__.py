"""Typed settings from ``settings.toml`` (interfaces.md §2).

``model`` holds the dataclasses, ``rules`` the validation, ``store`` loading and atomic saving,
``environment`` the secrets named by environment variable, ``descriptions`` what each key means,
``document`` the text of the file as saved, ``checks`` the rule helpers every section's rules
are made of, ``connectors`` the registry of the ERP sources and destinations.
Everything a caller needs is importable from here.
"""

from order_export_tui.settings.connectors import (
    DestinationConnector,
    DestinationIdentity,
    Required,
    Secret,
    SourceConnector,
    destination_identity,
    destination_names,
    source_names,
)
from order_export_tui.settings.descriptions import SETTING_DESCRIPTIONS, TABLE_DESCRIPTIONS
from order_export_tui.settings.environment import (
    missing_secrets,
    required_secrets,
    secret_value,
    weak_secrets,
    webhook_secret_key,
    webhook_secret_problem,
)
from order_export_tui.settings.model import (
    DEFAULT_SETTINGS_FILE,
    EMAIL_SECURITY,
    SETTINGS_ENV_VAR,
    WEBHOOK_SCHEMES,
    DestinationSettings,
    EmailSettings,
    ErpSettings,
    MonitoringSettings,
    Settings,
    SettingsError,
    StorageSettings,
    TaskSettings,
    WebhookSettings,
    WebstoreSettings,
    default_settings_path,
    resolve_path,
    shown_path,
)
from order_export_tui.settings.rules import (
    is_url,
    is_valid_email,
    parse_listen,
    settings_from_dict,
    settings_to_dict,
    validate,
    validate_settings,
)
from order_export_tui.settings.store import load_settings, save_settings

__all__ = [
    "DEFAULT_SETTINGS_FILE",
    "EMAIL_SECURITY",
    "SETTINGS_ENV_VAR",
    "SETTING_DESCRIPTIONS",
    "TABLE_DESCRIPTIONS",
    "WEBHOOK_SCHEMES",
    "DestinationConnector",
    "DestinationIdentity",
    "DestinationSettings",
    "EmailSettings",
    "ErpSettings",
    "MonitoringSettings",
    "Required",
    "Secret",
    "Settings",
    "SettingsError",
    "SourceConnector",
    "StorageSettings",
    "TaskSettings",
    "WebhookSettings",
    "WebstoreSettings",
    "default_settings_path",
    "destination_identity",
    "destination_names",
    "is_url",
    "is_valid_email",
    "load_settings",
    "missing_secrets",
    "parse_listen",
    "required_secrets",
    "resolve_path",
    "save_settings",
    "secret_value",
    "settings_from_dict",
    "settings_to_dict",
    "shown_path",
    "source_names",
    "validate",
    "validate_settings",
    "weak_secrets",
    "webhook_secret_key",
    "webhook_secret_problem",
]
