"""Typed settings from ``settings.toml`` (interfaces.md §2).

``model`` holds the dataclasses, ``rules`` the validation, ``store`` loading and atomic saving,
``environment`` the secrets named by environment variable, ``descriptions`` what each key means.
Everything a caller needs is importable from here.
"""

from order_export_tui.settings.descriptions import SETTING_DESCRIPTIONS
from order_export_tui.settings.environment import missing_secrets, required_secrets, secret_value
from order_export_tui.settings.model import (
    DEFAULT_SETTINGS_FILE,
    DESTINATION_APPS,
    DOTDIGITAL_REGIONS,
    EMAIL_SECURITY,
    ERP_SOURCES,
    SECTIONS,
    SETTINGS_ENV_VAR,
    BusinessCentralSettings,
    DestinationSettings,
    DotdigitalSettings,
    EmailSettings,
    ErpSettings,
    FileSettings,
    MailchimpSettings,
    Settings,
    SettingsError,
    StorageSettings,
    TaskSettings,
    WebhookSettings,
    WebstoreSettings,
    default_settings_path,
    resolve_path,
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
    "DESTINATION_APPS",
    "DOTDIGITAL_REGIONS",
    "EMAIL_SECURITY",
    "ERP_SOURCES",
    "SECTIONS",
    "SETTINGS_ENV_VAR",
    "SETTING_DESCRIPTIONS",
    "BusinessCentralSettings",
    "DestinationSettings",
    "DotdigitalSettings",
    "EmailSettings",
    "ErpSettings",
    "FileSettings",
    "MailchimpSettings",
    "Settings",
    "SettingsError",
    "StorageSettings",
    "TaskSettings",
    "WebhookSettings",
    "WebstoreSettings",
    "default_settings_path",
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
    "validate",
    "validate_settings",
]
