"""Validation: every key's rule, the rules across keys, and problems that name the key.

The core tables' rules are here; each connector's section brings its own (settings.connectors).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from order_export_tui.settings.checks import (
    BOOL,
    EMAIL,
    EMAIL_LIST,
    ENV,
    NON_EMPTY_STR,
    STR,
    Rule,
    integer,
    is_listen,
    is_url,
    is_valid_email,
    one_of,
    parse_listen,
)
from order_export_tui.settings.checks import problem as _problem
from order_export_tui.settings.checks import show as _show
from order_export_tui.settings.connectors import (
    DESTINATIONS_GROUP,
    SOURCES_GROUP,
    Connector,
    destination_connector,
    registry,
    source_connector,
)
from order_export_tui.settings.database_url import is_database_url, url_has_password
from order_export_tui.settings.model import (
    CORE_TABLES,
    EMAIL_SECURITY,
    WEBHOOK_SCHEMES,
    DestinationSettings,
    ErpSettings,
    Settings,
    SettingsError,
    resolve_path,
)

__all__ = [
    "is_url",
    "is_valid_email",
    "parse_listen",
    "settings_from_dict",
    "settings_to_dict",
    "validate",
    "validate_settings",
]

# --- validation rules --------------------------------------------------------------------------

_RUN_TIME = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")

_CORE_RULES: dict[str, Rule] = {
    "task.run_on_schedule": BOOL,
    "task.run_interval_minutes": integer(0, 10080),
    "task.run_time": Rule(
        'must be "" or a time "HH:MM" from 00:00 to 23:59',
        lambda v: isinstance(v, str) and (v == "" or _RUN_TIME.fullmatch(v) is not None),
    ),
    "task.send_email_on_failure": BOOL,
    "task.max_archived_log_files": integer(1, 1000),
    "task.batch_size": integer(1, 10000),
    "task.max_days_to_export": integer(1, 3650),
    "task.max_retry_interval_seconds": integer(0, 86400),
    "task.max_retries": integer(0, 100),
    "task.max_items_to_skip": integer(0, 1000000),
    "task.request_timeout_seconds": integer(1, 600),
    "webstore.name": NON_EMPTY_STR,
    "email.smtp_host": STR,
    "email.smtp_port": integer(1, 65535),
    "email.security": one_of(*EMAIL_SECURITY),
    "email.username": STR,
    "email.password_env": ENV,
    "email.sender": EMAIL,
    "email.to": EMAIL_LIST,
    "webhook.enabled": BOOL,
    "webhook.listen": Rule(
        'must be "host:port" with a port from 1 to 65535 (IPv6 as "[::1]:8787")', is_listen
    ),
    "webhook.secret_env": ENV,
    "webhook.scheme": one_of(*WEBHOOK_SCHEMES),
    "webhook.tolerance_seconds": integer(1, 86400),
    "monitoring.listen": Rule(
        'must be "" or "host:port" with a port from 1 to 65535 (IPv6 as "[::1]:9187")',
        lambda v: v == "" or is_listen(v),
    ),
    "verify.interval_hours": integer(0, 8760),
    "verify.repair": BOOL,
    "storage.state_database": Rule(
        "must be a non-empty string: a file path, or a postgresql:// URL without a password (the"
        " password goes in the environment variable named by storage.database_password_env)",
        lambda v: (
            isinstance(v, str)
            and bool(v.strip())
            and not (is_database_url(v) and url_has_password(v))
        ),
    ),
    "storage.logs_dir": NON_EMPTY_STR,
    "storage.control_socket": NON_EMPTY_STR,
    "storage.database_password_env": Rule(
        '"" or ' + ENV.expect, lambda v: v == "" or (isinstance(v, str) and ENV.accepts(v))
    ),
}

# The key that chooses a connector of each kind, and the entry-point group of that kind.
_CHOOSERS = {"erp.source": SOURCES_GROUP, "destination.app": DESTINATIONS_GROUP}

# A table: key name -> its rule, or sub-table name -> that table.
Layout = dict[str, Any]


def layout() -> dict[str, Layout]:
    """Every table and key of the file, in the documented order, with each key's rule."""
    reg = registry()
    tables: dict[str, Layout] = {}
    for name, cls in CORE_TABLES.items():
        if name == "erp":
            erp: Layout = {"source": one_of(*(c.name for c in reg.sources))}
            for connector in reg.sources:
                if connector.flat:
                    erp.update(_connector_rules(connector))
            for connector in reg.sources:
                if not connector.flat:
                    erp[connector.section.split(".", 1)[1]] = _connector_rules(connector)
            tables[name] = erp
        elif name == "destination":
            tables[name] = {"app": one_of(*(c.name for c in reg.destinations))}
            for connector in reg.destinations:
                tables[connector.section] = _connector_rules(connector)
        else:
            fields = dataclasses.fields(cls)
            tables[name] = {f.name: _CORE_RULES[f"{name}.{f.name}"] for f in fields}
    return tables


def _connector_rules(connector: Connector[Any]) -> Layout:
    return {key: connector.rules[key] for key in connector.key_names()}


# --- structure: tables, keys, unknown names ----------------------------------------------------


def _all_paths() -> list[str]:
    """Every known dotted table and key path."""
    paths: list[str] = []

    def walk(table: Layout, prefix: str) -> None:
        for name, entry in table.items():
            paths.append(prefix + name)
            if isinstance(entry, dict):
                walk(entry, f"{prefix}{name}.")

    walk(layout(), "")
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


def _unloadable(key: str, value: object) -> str | None:
    """A chooser naming a connector whose package is installed but broken: say so."""
    group = _CHOOSERS.get(key)
    why = registry().broken.get((group, value)) if group and isinstance(value, str) else None
    if why is None:
        return None
    return _problem(key, f"the connector {value!r} is installed but cannot be loaded: {why}", value)


@dataclass
class _Reader:
    """Walks the TOML data; collects problems and the keys whose values were rejected."""

    problems: list[str] = field(default_factory=list)
    rejected: set[str] = field(default_factory=set)

    def reject(self, key: str, problem: str) -> None:
        self.problems.append(problem)
        self.rejected.add(key)

    def table(self, table: Layout, data: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        """The accepted values (sub-tables as dicts)."""
        values: dict[str, Any] = {}
        for name, value in data.items():
            key = prefix + name
            entry = table.get(name)
            if entry is None:
                self.reject(key, _unknown(prefix, name, list(table), value))
            elif isinstance(entry, dict):
                if isinstance(value, dict):
                    values[name] = self.table(entry, value, key + ".")
                else:
                    self.reject(key, _problem(key, "must be a table", value))
            elif entry.accepts(value):
                values[name] = list(value) if isinstance(value, list) else value
            else:
                self.reject(key, _unloadable(key, value) or _problem(key, entry.expect, value))
        return values


def _build(tree: Mapping[str, Any], path: Path) -> Settings:
    """Settings from accepted values; every key not given keeps its default."""
    reg = registry()
    erp_data = tree.get("erp", {})
    erp_sections = {
        c.name: c.settings(
            **(
                {key: erp_data[key] for key in c.key_names() if key in erp_data}
                if c.flat
                else erp_data.get(c.section.split(".", 1)[1], {})
            )
        )
        for c in reg.sources
    }
    chosen_source = {"source": erp_data["source"]} if "source" in erp_data else {}
    core = {
        name: cls(**tree.get(name, {}))
        for name, cls in CORE_TABLES.items()
        if name not in ("erp", "destination")
    }
    return Settings(
        **core,
        erp=ErpSettings(**chosen_source, sections=erp_sections),
        destination=DestinationSettings(**tree.get("destination", {})),
        path=path,
        sections={c.name: c.settings(**tree.get(c.section, {})) for c in reg.destinations},
    )


# --- storage paths -----------------------------------------------------------------------------

# Keys that name a file the product writes or reads (connectors add theirs), and the one that
# names a folder.
_CORE_FILE_KEYS = ("storage.state_database", "storage.control_socket")
_FOLDER_KEYS = ("storage.logs_dir",)
_PATH_MAX = 4095  # bytes, Linux's PATH_MAX less the final NUL
_NAME_MAX = 255  # bytes per file or folder name
# The system's own folders: a path key there would overwrite the system (`/etc/passwd` as the
# state database) or could never work.
_SYSTEM_FOLDERS = (
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/boot",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/usr",
)
_SYSTEM_EXCEPTIONS = ("/dev/shm", "/usr/local")  # a tmpfs meant for files; the site's own


def _file_keys() -> tuple[str, ...]:
    named = [c.key(name) for c in registry().all() for name in c.file_keys]
    return (*_CORE_FILE_KEYS, *named)


def _names_a_file(s: Settings, key: str) -> bool:
    """A path key names a file, except a state database on a PostgreSQL server (a URL)."""
    return not (key == "storage.state_database" and is_database_url(_key_value(s, key)))


def _rejected(key: str, rejected: set[str]) -> bool:
    """The key, or a table holding it, was rejected (a table given as a scalar, say)."""
    parts = key.split(".")
    return any(".".join(parts[:end]) in rejected for end in range(1, len(parts) + 1))


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
    if key in _file_keys():
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
    for key in (*_file_keys(), *_FOLDER_KEYS):
        if _rejected(key, rejected):
            continue
        value = _key_value(s, key)
        if not value.strip() or not _names_a_file(s, key):
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
    try:
        target = os.path.realpath(resolve_path(s, s.file.path))
    except (ValueError, RuntimeError):  # a NUL or an unknown ~user: its own rule names it
        return []
    for key in ("storage.state_database", "storage.control_socket"):
        if key in rejected or "storage" in rejected or not _key_value(s, key).strip():
            continue
        if not _names_a_file(s, key):
            continue
        try:
            own = os.path.realpath(resolve_path(s, _key_value(s, key)))
        except (ValueError, RuntimeError):
            continue
        if target in (own + suffix for suffix in _DERIVED_SUFFIXES):
            return [_problem("file.path", f"names a file of {key} ({target})", s.file.path)]
    return []


def _cross_checks(s: Settings, rejected: set[str]) -> list[str]:
    """Rules that relate keys; a rule is skipped when a key it reads was already rejected."""
    problems: list[str] = []

    def usable(*keys: str) -> bool:
        return not any(_rejected(key, rejected) for key in keys)

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

    for chooser, connector in (
        ("erp.source", source_connector(s.erp.source)),
        ("destination.app", destination_connector(s.destination.app)),
    ):
        if connector is None or not usable(chooser):
            continue
        section = connector.section_of(s)
        chosen = f'{chooser} = "{connector.name}"'
        for need in connector.required:
            key = connector.key(need.key)
            if need.when is not None and not (
                usable(*(connector.key(read) for read in need.reads)) and need.when(section)
            ):
                continue
            condition = f"{chosen} {need.condition}" if need.condition else chosen
            require(key, getattr(section, need.key), condition)

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
    tree = reader.table(layout(), data, "")
    settings = _build(tree, Path(os.path.abspath(path)))
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
    reg = registry()
    data: dict[str, Any] = {}
    for name in CORE_TABLES:
        if name == "erp":
            erp: dict[str, Any] = {"source": settings.erp.source}
            for c in reg.sources:
                if c.flat:
                    erp.update(dataclasses.asdict(c.section_of(settings)))
            for c in reg.sources:
                if not c.flat:
                    erp[c.section.split(".", 1)[1]] = dataclasses.asdict(c.section_of(settings))
            data[name] = erp
        else:
            data[name] = dataclasses.asdict(getattr(settings, name))
        if name == "destination":
            for c in reg.destinations:
                data[c.section] = dataclasses.asdict(c.section_of(settings))
    return data


def with_values_of(source: Settings, target: Settings, keys: tuple[str, ...]) -> Settings:
    """`target` with these dotted keys' values taken from `source` (both already valid)."""
    if not keys:
        return target
    data, given = settings_to_dict(target), settings_to_dict(source)
    for key in keys:
        *tables, name = key.split(".")
        into, out_of = data, given
        for table in tables:
            into, out_of = into[table], out_of[table]
        into[name] = out_of[name]
    return settings_from_dict(data, target.path)
