"""The text of a settings file as `save_settings` writes it: a header, then every table and key
in the documented order, each with its description as the comment above it.

The values go through tomli-w (so every string is escaped as TOML requires); only the comments
and the table headers are written here. The shipped `settings.toml` is this text for the
defaults, so a file saved unchanged is byte-identical and an edit changes only its own lines.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import tomli_w

from order_export_tui.settings.descriptions import SETTING_DESCRIPTIONS, TABLE_DESCRIPTIONS
from order_export_tui.settings.model import Settings
from order_export_tui.settings.rules import settings_to_dict

COMMENT_WIDTH = 100

DEFAULT_HEADER = (
    "# order-export settings. Secrets never live here: each *_env key names the environment",
    "# variable that holds one. Relative paths resolve against this file's folder.",
    "# Check this file with `order-export check`. Saving from the dashboard's settings form",
    "# rewrites it: this first block of comments is kept, the comment above each key is its",
    "# description, and other comments are not kept.",
)


def header_of(text: str) -> tuple[str, ...]:
    """The file's first block of comment lines (up to its first line that is not one)."""
    lines: list[str] = []
    for line in text.lstrip("\ufeff").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return tuple(lines)


def render_settings(settings: Settings, header: tuple[str, ...] = DEFAULT_HEADER) -> str:
    """The whole file: `header` (comment lines), then the tables."""
    parts = ["\n".join(header) + "\n"] if header else []
    for name, table in settings_to_dict(settings).items():
        parts.extend(_table(name, table))
    return "\n".join(parts)


def _table(dotted: str, table: Mapping[str, Any]) -> list[str]:
    """One block for the table's own keys, then one per sub-table (TOML wants that order)."""
    lines = [*_comment(TABLE_DESCRIPTIONS.get(dotted, "")), f"[{dotted}]"]
    nested: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            nested.append((key, value))
            continue
        lines.append("")
        lines.extend(_comment(SETTING_DESCRIPTIONS.get(f"{dotted}.{key}", "")))
        lines.append(tomli_w.dumps({key: value}).rstrip("\n"))
    blocks = ["\n".join(lines) + "\n"]
    for key, value in nested:
        blocks.extend(_table(f"{dotted}.{key}", value))
    return blocks


def _comment(text: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=COMMENT_WIDTH,
        initial_indent="# ",
        subsequent_indent="# ",
        break_long_words=False,
        break_on_hyphens=False,
    )
