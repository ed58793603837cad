"""The command palette (ctrl+p), read from the declared keys: the screen's own commands
first, then the app's, then Textual's (theme, maximize, screenshot)."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App, SystemCommand
from textual.screen import Screen

from order_export_tui.tui.keys import APP_COMMANDS, offered

# Textual's own entries that ours replace: Quit asks first; Keys is our help.
REPLACED = frozenset({"Quit", "Keys"})


def app_commands(app: App[object], screen: Screen[object]) -> Iterable[SystemCommand]:
    for key in offered(type(screen).BINDINGS):
        yield SystemCommand(key.title, key.palette_help(), getattr(screen, f"action_{key.action}"))
    for command in APP_COMMANDS:
        if command.title:
            action = getattr(app, f"action_{command.action}")
            yield SystemCommand(command.title, command.palette_help(), action)
