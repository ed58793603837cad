"""The settings form's model: one field per key of settings.toml, in the file's order, and
the mapping between what an operator types and the TOML values (no Textual here).

Validation is the loader's own (`settings.validate`): the form builds the TOML data it would
write and asks the loader what is wrong with it, so the form and `order-export check` can
never disagree. Each problem names its key; the form shows it at that field.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from order_export_tui.settings import (
    EMAIL_SECURITY,
    SETTING_DESCRIPTIONS,
    Settings,
    destination_names,
    settings_to_dict,
    source_names,
    validate,
)
from order_export_tui.settings.connectors import registry

BOOL = "bool"
INT = "int"
CHOICE = "choice"
LIST = "list"
SECRET = "secret"  # an *_env key: the name of the variable that holds a secret
TEXT = "text"


def choices() -> dict[str, tuple[str, ...]]:
    """Keys offered as a choice: the connector choosers, each connector's enumerations, and
    the e-mail security."""
    offered: dict[str, tuple[str, ...]] = {
        "erp.source": source_names(),
        "destination.app": destination_names(),
    }
    for connector in registry().all():
        for name, rule in connector.rules.items():
            if rule.choices:
                offered[connector.key(name)] = rule.choices
    offered["email.security"] = EMAIL_SECURITY
    return offered


@dataclass(frozen=True, slots=True)
class FieldSpec:
    key: str  # dotted, e.g. "erp.business_central.base_url"
    group: str  # the TOML table, e.g. "erp.business_central"
    kind: str
    description: str
    choices: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[1]


def field_specs(settings: Settings) -> list[FieldSpec]:
    """Every key of the settings file, grouped by table in the file's order."""
    return list(_walk(settings_to_dict(settings), "", choices(), dict(SETTING_DESCRIPTIONS)))


def _walk(
    table: Mapping[str, Any],
    prefix: str,
    offered: Mapping[str, tuple[str, ...]],
    described: Mapping[str, str],
) -> Iterator[FieldSpec]:
    nested = []
    for name, value in table.items():
        key = prefix + name
        if isinstance(value, dict):
            nested.append((key, value))
            continue
        group = prefix.rstrip(".")
        yield FieldSpec(
            key,
            group,
            _kind(key, value, offered),
            described.get(key, ""),
            offered.get(key, ()),
        )
    for key, value in nested:
        yield from _walk(value, key + ".", offered, described)


def _kind(key: str, value: object, offered: Mapping[str, tuple[str, ...]]) -> str:
    if key in offered:
        return CHOICE
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, list):
        return LIST
    if key.endswith("_env"):
        return SECRET
    return TEXT


def flat_values(settings: Settings) -> dict[str, Any]:
    """Dotted key -> TOML value."""
    values: dict[str, Any] = {}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for name, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{name}.")
            else:
                values[prefix + name] = value

    walk(settings_to_dict(settings), "")
    return values


def to_text(kind: str, value: Any) -> str:
    """How an Input shows a TOML value."""
    if kind == LIST:
        return ", ".join(value)
    return str(value)


def from_text(kind: str, text: str) -> Any:
    """The TOML value for what was typed; text that is no integer stays text, so the loader's
    rule names it ("must be an integer from 1 to 10000 (got "ten")")."""
    if kind == INT:
        stripped = text.strip()
        try:
            return int(stripped)
        except ValueError:
            return stripped
    if kind == LIST:
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def nest(values: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys back into TOML tables."""
    data: dict[str, Any] = {}
    for key, value in values.items():
        *tables, name = key.split(".")
        table = data
        for part in tables:
            table = table.setdefault(part, {})
        table[name] = value
    return data


@dataclass(frozen=True, slots=True)
class FormCheck:
    settings: Settings | None  # the settings to save, when there is no problem
    at_field: dict[str, list[str]]  # key -> the problems naming it, without the key
    elsewhere: list[str]  # problems naming no field of the form


def check(values: Mapping[str, Any], path: Path, keys: Iterable[str]) -> FormCheck:
    settings, problems = validate(nest(values), path)
    known = set(keys)
    at_field: dict[str, list[str]] = {}
    elsewhere: list[str] = []
    for problem in problems:
        key, _, message = problem.partition(": ")
        if key in known:
            at_field.setdefault(key, []).append(message)
        else:
            elsewhere.append(problem)
    if settings is not None:
        settings.path = path
    return FormCheck(settings, at_field, elsewhere)
