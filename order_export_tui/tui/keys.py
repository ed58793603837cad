"""Every key of the dashboard, declared once.

A key is a Textual `Binding` with an `id` and a `description` (the footer's word); a longer
line for the help goes in its `tooltip`, and a key the command palette offers carries its
entry there (`title`, `summary`). The footer, the help screen (`help_sections`) and the
palette (`palette`) are all read from these declarations, so a new key shows up in all three
without editing any of them. An action offered only in the palette is a `PaletteCommand`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from textual.binding import Binding, BindingType

# How a key is named in the palette's hints, where Textual's own names would read oddly.
KEY_NAMES = {"question_mark": "?", "slash": "/", "f1": "F1", "f2": "F2", "ctrl+s": "^s"}


@dataclass(frozen=True)
class Key(Binding):
    """A binding the command palette offers as `title` (`summary` says what it does; the
    palette adds the keys)."""

    title: str = ""
    summary: str = ""
    # The word the dashboard's footer shows for an app-wide key it repeats ("" : not repeated).
    footer: str = ""

    def hint(self) -> str:
        """The keys as the palette names them: "? or F1"."""
        keys = [key.strip() for key in self.key.split(",")]
        first = self.key_display or KEY_NAMES.get(keys[0], keys[0])
        return " or ".join([first, *(KEY_NAMES.get(key, key) for key in keys[1:])])

    def palette_help(self) -> str:
        return f"{self.summary} ({self.hint()})"


@dataclass(frozen=True, slots=True)
class PaletteCommand:
    """An action the command palette offers with no key of its own."""

    title: str
    summary: str
    action: str

    def palette_help(self) -> str:
        return self.summary


Command = Key | PaletteCommand

# The app's commands in the order the palette and the help list them.
APP_COMMANDS: Sequence[Command] = [
    Key("r", "run_now", "Run", id="run_now", title="Run now", summary="Start an export run now"),
    Key(
        "c",
        "cancel_run",
        "Cancel",
        id="cancel_run",
        title="Cancel the run",
        summary="Stop the run at the next batch boundary",
    ),
    # Shown in the dashboard's footer (`footer`); they work everywhere.
    Key(
        "s",
        "show_settings",
        "Settings",
        id="show_settings",
        show=False,
        title="Settings",
        summary="Edit settings.toml",
        footer="Settings",
    ),
    Key(
        "l",
        "show_logs",
        "Logs",
        id="show_logs",
        show=False,
        title="Logs",
        summary="Browse the per-run log files",
        footer="Logs",
    ),
    Key(
        "1",
        "show_history",
        "History",
        id="show_history",
        show=False,
        title="Run history",
        summary="Show the recent runs",
        footer="History",
    ),
    Key(
        "2",
        "show_skipped",
        "Skipped",
        id="show_skipped",
        show=False,
        title="Skipped orders",
        summary="Show the skipped orders",
        footer="Skipped",
    ),
    Key(
        "e",
        "show_realtime",
        "Real-time events",
        id="show_realtime",
        show=False,
        title="Real-time events",
        summary="The recent webhook events and what became of each",
        footer="Events",
    ),
    PaletteCommand("Re-try all skipped orders", "Send every skipped order again", "retry_skipped"),
    Key(
        "R",
        "resend",
        "Resend",
        key_display="R",
        id="resend",
        show=False,
        tooltip="Resend orders by id (offers the selected skipped order)",
        title="Resend orders",
        summary="Send orders by id again, even if unchanged",
    ),
    Key(
        "v",
        "show_verify",
        "Verify",
        id="show_verify",
        show=False,
        tooltip="Verify the platform's copy against the ERP (and repair it)",
        title="Verify the platform's copy",
        summary="Read the platform's orders back and name every difference from the ERP",
    ),
    PaletteCommand(
        "Backfill from a date",
        "Export every order dated on or after a day (YYYY-MM-DD), beyond the window",
        "backfill",
    ),
    Key(
        "question_mark,f1",
        "show_help",
        "Help",
        key_display="?",
        id="show_help",
        title="Help",
        summary="Every key",
    ),
    Key(
        "q",
        "quit",
        "Quit",
        id="quit",
        title="Quit",
        summary="Quit; asks while a run is in flight",
    ),
]


def bindings(commands: Iterable[Command]) -> list[BindingType]:
    """The `BINDINGS` of a class: its commands that have a key."""
    return [command for command in commands if isinstance(command, Binding)]


def footer_repeats(commands: Iterable[Command]) -> list[BindingType]:
    """The app-wide keys a screen's footer shows (the app's own are hidden so that every other
    screen's footer keeps its room)."""
    return [
        Binding(command.key, f"app.{command.action}", command.footer, id=command.id)
        for command in commands
        if isinstance(command, Key) and command.footer
    ]


def offered(bindings: Iterable[BindingType]) -> list[Key]:
    """The keys of `bindings` that the command palette offers."""
    return [binding for binding in bindings if isinstance(binding, Key) and binding.title]
