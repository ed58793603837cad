"""A broken settings file does not lock the operator out of a healthy daemon (issue 25 item 4):
the dashboard attaches on the file's `[storage]`, names the problems on its settings screen, and
saving there fixes the file. Without a daemon the dashboard refuses with the key, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static

from order_export_tui.service.control_client import AttachedControl
from order_export_tui.settings import SettingsError, load_settings
from order_export_tui.tui import OrderExportApp, dashboard_settings, remote_settings
from order_export_tui.tui.settings_screen import SettingsScreen
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, order_export
from tests.tui.conftest import screen_text, wait_until

BROKEN_KEY = "task.batch_size: must be an integer from 1 to 10000 (got 0)"


def break_the_settings(folder: Path) -> str:
    path = folder / "settings.toml"
    broken = path.read_text().replace("batch_size = 50", "batch_size = 0")
    assert "batch_size = 0" in broken
    path.write_text(broken)
    return broken


def flat(app: OrderExportApp) -> str:
    return " ".join(screen_text(app).split())


async def test_the_dashboard_attaches_names_the_problem_and_saving_fixes_the_file(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    write_settings(tmp_path)
    made = order_export("demo", "--orders", "40", "--malformed", "0", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    daemon = DaemonProcess(tmp_path)
    daemons.append(daemon)
    daemon.wait_started()
    break_the_settings(tmp_path)
    path = tmp_path / "settings.toml"

    settings, problems = dashboard_settings(path)
    assert problems == [BROKEN_KEY]
    socket = settings.control_socket_path
    app = OrderExportApp(
        await remote_settings(socket), control=AttachedControl(socket), file_problems=problems
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: f"order-export daemon, pid {daemon.pid}" in flat(app))
        said = [n.message for n in app._notifications]
        assert any("Press s to fix it" in text and BROKEN_KEY in text for text in said), said
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        form = app.screen
        assert isinstance(form, SettingsScreen)
        shown = form.query_one("#settings-file-problems", Static)
        assert shown.display and BROKEN_KEY in str(shown.render())
        editor = form.field("task.batch_size").editor
        assert isinstance(editor, Input) and editor.value == "50"  # the settings in force
        editor.value = "25"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "batch_size = 25" in path.read_text(), timeout=30)
        await wait_until(pilot, lambda: not shown.display)
    assert load_settings(path).task.batch_size == 25
    assert dashboard_settings(path)[1] == []
    assert daemon.stop() == 0


def test_without_a_daemon_a_broken_file_is_refused_with_its_key(tmp_path: Path) -> None:
    write_settings(tmp_path)
    broken = break_the_settings(tmp_path)
    path = tmp_path / "settings.toml"

    with pytest.raises(SettingsError) as raised:
        dashboard_settings(path)
    assert raised.value.problems == [BROKEN_KEY]

    started = order_export("tui", cwd=tmp_path)
    assert started.returncode == 2
    assert BROKEN_KEY in started.stderr
    assert "Traceback" not in started.stderr
    assert path.read_text() == broken
