"""What the help screen (? or F1) lists, read from the bindings themselves.

Each section lists the keys declared (bound with an `id`) by the classes it covers, in their
order, each key once (an app-wide key a screen repeats for its footer stays under
"Everywhere"); its text is the binding's `tooltip` when it says more than the footer's word.
The notes are what no binding of ours declares: Textual's own keys and the movement keys a
list shares, which read better as one line than as four.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.app import App
from textual.binding import Binding, BindingType

from order_export_tui.tui.dashboard_screen import DashboardScreen
from order_export_tui.tui.help_screen import KeyHelp
from order_export_tui.tui.history_table import RunHistoryTable
from order_export_tui.tui.list_table import ListTable
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.realtime_screen import RealtimeScreen
from order_export_tui.tui.settings_screen import SettingsScreen
from order_export_tui.tui.skipped_table import SkippedOrdersTable
from order_export_tui.tui.verify_screen import VerifyScreen

# A class whose `BINDINGS` the section lists (read when the help opens), or a note.
Part = type | KeyHelp
Section = tuple[str, Sequence[Part]]
APP = App  # stands for the app's own class, whichever it is

SECTIONS: Sequence[Section] = [
    (
        "Everywhere",
        [
            APP,
            ("f1", "Help (this screen)"),
            ("ctrl+p", "Command palette: every action by name"),
        ],
    ),
    (
        "Dashboard",
        [
            ("j k ↑ ↓ pgup pgdn", "Move in the focused table"),
            ("g / G", "First / last row of the focused table"),
            DashboardScreen,
            ListTable,
            ("tab", "Next panel"),
            RunHistoryTable,
            SkippedOrdersTable,
            ("ctrl+p", "Backfill from a date: in the command palette"),
        ],
    ),
    (
        "Real-time events",
        [
            RealtimeScreen,
            ("j k ↑ ↓ g G", "Move in the events (the newest is first)"),
        ],
    ),
    (
        "Logs",
        [
            LogsScreen,
            ("j k ↑ ↓", "Move in the file list, scroll the log"),
            ("g / G", "Top / end of the list or log (the end follows a live log)"),
            ("tab", "Between the file list and the log"),
            ("← →", "Scroll a long log line sideways"),
        ],
    ),
    ("Settings", [SettingsScreen, ("tab / shift+tab", "Next field")]),
    ("Verify", [VerifyScreen]),
]


def declared(parts: Iterable[BindingType]) -> list[Binding]:
    """The keys of a `BINDINGS` list that the help lists: those bound with an id."""
    return [binding for binding in parts if isinstance(binding, Binding) and binding.id]


def help_sections(app: App[object]) -> list[tuple[str, list[KeyHelp]]]:
    """The help's sections: (title, [(keys as shown, what they do)])."""
    listed: set[str] = set()
    sections = []
    for title, parts in SECTIONS:
        rows: list[KeyHelp] = []
        for part in parts:
            if isinstance(part, tuple):
                rows.append(part)
                continue
            cls = type(app) if part is APP else part
            for binding in declared(cls.BINDINGS):
                if binding.id not in listed:
                    listed.add(binding.id or "")
                    rows.append((shown_keys(app, binding), binding.tooltip or binding.description))
        sections.append((title, rows))
    return sections


def shown_keys(app: App[object], binding: Binding) -> str:
    return binding.key_display or " / ".join(
        app.get_key_display(Binding(key, binding.action)) for key in binding.key.split(",")
    )
