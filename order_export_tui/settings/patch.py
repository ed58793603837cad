"""Changing some keys of a settings file in place: every other line (an operator's comments,
inline comments, blank lines, the order of keys, keys nobody touched) stays as it was.

A form or a control client saves what it changed, not what it read: a value edited by hand
since then is never written back over. `revision_of` names the text a form read, so a save
over a file that changed since can be refused instead of silently overwriting it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from typing import Any

import tomli_w

_TABLE_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*\]\s*(#.*)?$")
_ARRAY_TABLE_HEADER = re.compile(r"^\s*\[\[")
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z0-9_\-]+)(\s*=\s*)(.*)$")


class PatchError(Exception):
    """The file cannot be changed in place (a key written in a form this module does not
    edit, say): the caller rewrites it whole instead."""


def revision_of(text: str) -> str:
    """A short name for one exact text of the settings file."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def patch_settings_text(text: str, changes: Mapping[str, Any]) -> str:
    """`text` with each dotted key of `changes` set to its value (a TOML value), added to its
    table (or a new table at the end) when the file lacks it. The result is checked: it
    parses, the changed keys hold their new values and every other value is as it was;
    PatchError otherwise."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for dotted, value in changes.items():
        table, _, key = dotted.rpartition(".")
        if not table or not key:
            raise PatchError(f"{dotted}: not a key inside a table")
        lines = _set_value(lines, table, key, value)
    patched = "".join(lines)
    _check(text, patched, changes)
    return patched


def _render(key: str, value: Any) -> str:
    return tomli_w.dumps({key: value}).strip()


def _table_spans(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Each table's header line and the line after its last line."""
    spans: dict[str, tuple[int, int]] = {}
    current: str | None = None
    start = 0
    for number, line in enumerate(lines):
        header = _TABLE_HEADER.match(line)
        if header or _ARRAY_TABLE_HEADER.match(line):
            if current is not None:
                spans[current] = (start, number)
            current = re.sub(r"\s+", "", header.group(1)) if header else None
            start = number
    if current is not None:
        spans[current] = (start, len(lines))
    return spans


def _value_end(lines: list[str], first: int, end: int) -> int:
    """The line after the last line of the value that starts on line `first` (a value may
    span lines: an array, a multi-line string)."""
    for last in range(first, end):
        try:
            tomllib.loads("".join(lines[first : last + 1]))
        except tomllib.TOMLDecodeError:
            continue
        return last + 1
    raise PatchError(f"cannot find the end of the value on line {first + 1}")


def _trailing_comment(before: str, last_line: str) -> str:
    """What follows a value on its last line: spaces and an inline comment, or "". `before`
    is the value's earlier lines (a value may span lines)."""
    body = last_line.rstrip("\n")
    for position in (i for i, char in enumerate(body) if char == "#"):
        head = body[:position]
        try:
            tomllib.loads(before + head)
        except tomllib.TOMLDecodeError:
            continue  # this "#" is inside a string
        spaces = len(head) - len(head.rstrip())
        return body[position - spaces :]
    return ""


def _set_value(lines: list[str], table: str, key: str, value: Any) -> list[str]:
    spans = _table_spans(lines)
    rendered = _render(key, value)
    if table not in spans:
        tail = [] if not lines or lines[-1].strip() == "" else ["\n"]
        return [*lines, *tail, f"[{table}]\n", f"{rendered}\n"]
    start, end = spans[table]
    last_key_line = start
    for number in range(start + 1, end):
        match = _KEY_LINE.match(lines[number])
        if match is None:
            continue
        last_key_line = number
        if match.group(2) != key:
            continue
        after = _value_end(lines, number, end)
        comment = _trailing_comment("".join(lines[number : after - 1]), lines[after - 1])
        new_line = f"{match.group(1)}{key}{match.group(3)}{rendered.split('=', 1)[1].strip()}"
        return [*lines[:number], f"{new_line}{comment}\n", *lines[after:]]
    insert_at = start + 1 if last_key_line == start else _value_end(lines, last_key_line, end)
    return [*lines[:insert_at], f"{rendered}\n", *lines[insert_at:]]


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _check(before: str, after: str, changes: Mapping[str, Any]) -> None:
    try:
        old = _flatten(tomllib.loads(before))
        new = _flatten(tomllib.loads(after))
    except tomllib.TOMLDecodeError as error:
        raise PatchError(f"the changed file would not parse: {error}") from None
    expected = {**old, **changes}
    if new != expected:
        wrong = sorted(k for k in expected.keys() | new.keys() if new.get(k) != expected.get(k))
        raise PatchError(f"the change did not land as asked: {', '.join(wrong)}")
