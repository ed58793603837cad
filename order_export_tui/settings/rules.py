"""Validation: every key's rule, the rules across keys, and problems that name the key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import ipaddress
import json
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from order_export_tui.settings.model import (
    DESTINATION_APPS,
    DOTDIGITAL_REGIONS,
    EMAIL_SECURITY,
    ERP_SOURCES,
    SECTIONS,
    WEBHOOK_SCHEMES,
    Settings,
    SettingsError,
    resolve_path,
)

# --- validation rules --------------------------------------------------------------------------

_RUN_TIME = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACKETED_LISTEN = re.compile(r"\[([^\]]+)\]:(\d{1,5})")


@dataclass(frozen=True)
class _Rule:
    """What a key must hold: ``"<key>: <expect> (got <value>)"`` when ``accepts`` says no."""

    expect: str
    accepts: Callable[[Any], bool]


_API_ROUTE = re.compile(r"[A-Za-z0-9]{1,40}/[A-Za-z0-9]{1,40}/(?:v[0-9]{1,3}\.[0-9]{1,3}|beta)")


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
    "task.request_timeout_seconds": _integer(1, 600),
    "webstore.name": _NON_EMPTY_STR,
    "erp.source": _one_of(*ERP_SOURCES),
    "erp.demo_database": _STR,
    "erp.business_central.base_url": _URL,
    "erp.business_central.company_id": _STR,
    "erp.business_central.tenant_id": _STR,
    "erp.business_central.client_id": _STR,
    "erp.business_central.client_secret_env": _ENV,
    "erp.business_central.token_url": _URL,
    "erp.business_central.shipment_tracking_field": _Rule(
        'must be "" or a field name (letters, digits and _, not starting with a digit)',
        lambda v: isinstance(v, str) and (v == "" or _ENV_NAME.fullmatch(v) is not None),
    ),
    "erp.business_central.tracking_url_template": _Rule(
        'must be "" or a URL starting with http:// or https:// holding "{tracking_number}"',
        lambda v: isinstance(v, str) and (v == "" or (is_url(v) and "{tracking_number}" in v)),
    ),
    "erp.business_central.shipment_tracking_api": _Rule(
        'must be "" or an API route publisher/group/version, e.g. "contoso/shipping/v1.0"',
        lambda v: isinstance(v, str) and (v == "" or _API_ROUTE.fullmatch(v) is not None),
    ),
    "destination.app": _one_of(*DESTINATION_APPS),
    "dotdigital.region": _one_of(*DOTDIGITAL_REGIONS),
    "dotdigital.base_url": _URL,
    "dotdigital.api_user": _STR,
    "dotdigital.password_env": _ENV,
    "dotdigital.collection": _NON_EMPTY_STR,
    "dotdigital.create_missing_contacts": _BOOL,
    "dotdigital.contact_list_id": _integer(0, 2147483647),
    "dotdigital.import_timeout_seconds": _integer(10, 86400),
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
    "webhook.scheme": _one_of(*WEBHOOK_SCHEMES),
    "webhook.tolerance_seconds": _integer(1, 86400),
    "monitoring.listen": _Rule(
        'must be "" or "host:port" with a port from 1 to 65535 (IPv6 as "[::1]:9187")',
        lambda v: v == "" or _is_listen(v),
    ),
    "storage.state_database": _NON_EMPTY_STR,
    "storage.logs_dir": _NON_EMPTY_STR,
    "storage.control_socket": _NON_EMPTY_STR,
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


# --- storage paths -----------------------------------------------------------------------------

# Keys that name a file the product writes or reads, and the one that names a folder.
_FILE_KEYS = ("storage.state_database", "storage.control_socket", "erp.demo_database", "file.path")
_FOLDER_KEYS = ("storage.logs_dir",)
_PATH_MAX = 4095  # bytes, Linux's PATH_MAX less the final NUL
_NAME_MAX = 255  # bytes per file or folder name
_SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
_SYSTEM_EXCEPTIONS = ("/dev/shm",)  # a tmpfs meant for files


def _key_value(s: Settings, key: str) -> str:
    table, name = key.split(".", 1)
    value: object = getattr(s, table)
    for part in name.split("."):
        value = getattr(value, part)
    return value if isinstance(value, str) else ""


def _path_problem(s: Settings, key: str, value: str) -> str | None:
    """Why a path key's value cannot work, or None."""
    if "\x00" in value:
        return _problem(key, "must not contain a NUL character", value)
    encoded = os.fsencode(value)
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if longest > _NAME_MAX:
        return _problem(key, f"has a file or folder name over {_NAME_MAX} bytes", value)
    try:
        resolved = resolve_path(s, value)
    except RuntimeError:  # "~name" of a user this system does not have
        return _problem(key, "starts with ~ but names no home folder on this system", value)
    if len(os.fsencode(str(resolved))) > _PATH_MAX:
        return _problem(key, f"is too long (more than {_PATH_MAX} bytes as a full path)", value)
    real = os.path.realpath(resolved)
    for system in _SYSTEM_FOLDERS:
        inside = real == system or real.startswith(system + "/")
        if inside and not any(real.startswith(ok) for ok in _SYSTEM_EXCEPTIONS):
            return _problem(key, f"must not be under {system} (a system folder)", value)
    if real == os.path.realpath(s.path):
        return _problem(key, "is the settings file itself; name another file", value)
    if key in _FILE_KEYS:
        if value.rstrip().endswith(("/", "\\")) or Path(value).name in ("", ".", ".."):
            return _problem(key, "must name a file, not a folder", value)
        if resolved.is_dir():
            return _problem(key, f"names a folder ({resolved}), not a file", value)
    elif resolved.exists() and not resolved.is_dir():
        return _problem(key, f"names a file ({resolved}), not a folder", value)
    return None


def _storage_problems(s: Settings, rejected: set[str]) -> list[str]:
    problems: list[str] = []
    seen: dict[str, str] = {}  # real path -> the key that named it first
    for key in (*_FILE_KEYS, *_FOLDER_KEYS):
        if key in rejected or key.split(".")[0] in rejected:
            continue
        value = _key_value(s, key)
        if not value.strip():
            continue  # required-ness is checked with the keys that need it
        problem = _path_problem(s, key, value)
        if problem is not None:
            problems.append(problem)
            continue
        real = os.path.realpath(resolve_path(s, value))
        if real in seen:
            problems.append(_problem(key, f"is the same path as {seen[real]}", value))
        seen.setdefault(real, key)
    return problems


# --- rules across keys -------------------------------------------------------------------------


# Files the state database and the control socket make beside themselves.
_DERIVED_SUFFIXES = ("-wal", "-shm", "-journal", ".lock")


def _own_file_problems(s: Settings, rejected: set[str]) -> list[str]:
    """`file.path` must not name a file of the state database (its journal, lock) or of the
    control socket: the dry run would overwrite it."""
    if "file.path" in rejected or "file" in rejected or not s.file.path.strip():
        return []
    target = os.path.realpath(resolve_path(s, s.file.path))
    for key in ("storage.state_database", "storage.control_socket"):
        if key in rejected or "storage" in rejected or not _key_value(s, key).strip():
            continue
        own = os.path.realpath(resolve_path(s, _key_value(s, key)))
        if target in (own + suffix for suffix in _DERIVED_SUFFIXES):
            return [_problem("file.path", f"names a file of {key} ({target})", s.file.path)]
    return []


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
    problems.extend(_storage_problems(s, rejected))
    problems.extend(_own_file_problems(s, rejected))
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
