"""Keys are declared once, as bindings with an id: the help screen and the command palette are
read from them, so a key added to a screen is in the help without editing the help."""

from __future__ import annotations

from typing import Any

import pytest
from textual.binding import Binding

from order_export_tui.tui.dashboard_screen import DashboardScreen
from order_export_tui.tui.help_screen import HelpScreen
from order_export_tui.tui.help_sections import declared
from order_export_tui.tui.history_table import RunHistoryTable
from order_export_tui.tui.keys import Key
from order_export_tui.tui.list_table import ListTable
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.realtime_screen import RealtimeScreen
from order_export_tui.tui.settings_screen import SettingsScreen
from order_export_tui.tui.skipped_table import SkippedOrdersTable
from tests.tui.conftest import screen_text, wait_until

WITH_KEYS = [
    DashboardScreen,
    ListTable,
    RunHistoryTable,
    SkippedOrdersTable,
    RealtimeScreen,
    LogsScreen,
    SettingsScreen,
]


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


async def help_text(app: Any, pilot: Any) -> str:
    await pilot.press("question_mark")
    await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
    return flat(screen_text(app))


async def test_the_help_lists_every_declared_key_with_its_words(make_app) -> None:
    app = make_app(orders=10, malformed=0)
    async with app.run_test(size=(100, 80)) as pilot:
        text = await help_text(app, pilot)
    everything = {}  # by id: a footer's repeat of an app-wide key is listed once, as the app's
    for cls in [type(app), *WITH_KEYS]:
        for binding in declared(cls.BINDINGS):
            everything.setdefault(binding.id, binding)
    assert len(everything) >= 20
    for binding in everything.values():
        assert flat(binding.tooltip or binding.description) in text, binding.id


async def test_a_key_added_to_a_screen_is_in_the_help_without_editing_it(
    make_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = Binding("x", "export_log", "Export this log", id="export_log")
    monkeypatch.setattr(LogsScreen, "BINDINGS", [*LogsScreen.BINDINGS, added])
    app = make_app(orders=10, malformed=0)
    async with app.run_test(size=(100, 80)) as pilot:
        text = await help_text(app, pilot)
    assert "x Export this log" in text
    # Under its screen's title, after that screen's other keys.
    assert text.index("Logs esc Back") < text.index("x Export this log") < text.index("^s Save")


async def test_the_palette_offers_every_bound_action_with_its_keys(make_app) -> None:
    app = make_app(orders=10, malformed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        offered = {command.callback: command for command in app.get_system_commands(app.screen)}
        for binding in app.BINDINGS:
            assert isinstance(binding, Key)
            command = offered[getattr(app, f"action_{binding.action}")]
            assert command.title == binding.title
            assert command.help.endswith(f"({binding.hint()})")
        # A screen's own commands come first while it is shown.
        for key, screen_type in [("l", LogsScreen), ("s", SettingsScreen)]:
            await pilot.press(key)
            await wait_until(
                pilot, lambda screen_type=screen_type: isinstance(app.screen, screen_type)
            )
            commands = list(app.get_system_commands(app.screen))
            own = [b for b in screen_type.BINDINGS if isinstance(b, Key) and b.title]
            assert own and [c.title for c in commands[: len(own)]] == [b.title for b in own]
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))


def test_the_palette_names_keys_as_the_operator_types_them() -> None:
    help_key = Key("question_mark,f1", "show_help", "Help", key_display="?", id="h", title="Help")
    assert help_key.hint() == "? or F1"
    assert Key("ctrl+s,f2", "save", "Save", key_display="^s", id="s").hint() == "^s or F2"
    assert Key("R", "resend", "Resend", key_display="R", id="r").hint() == "R"
