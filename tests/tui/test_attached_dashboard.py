"""The dashboard attached to a real `order-export daemon` over its control socket: every key
acts on the daemon, quitting leaves it running, a lost daemon is said and re-attached."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from order_export_tui.engine.runlogs import run_log_files
from order_export_tui.service.control_client import AttachedControl
from order_export_tui.settings import load_settings
from order_export_tui.tui import OrderExportApp, remote_settings
from order_export_tui.tui.confirm_screen import ConfirmScreen
from order_export_tui.tui.dashboard_screen import DashboardScreen
from order_export_tui.tui.logs_screen import LogsScreen
from order_export_tui.tui.settings_screen import SettingsScreen
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, order_export
from tests.support.gated_file import allow, gated_destination
from tests.tui.conftest import screen_text, wait_until

ORDERS = 200  # more than the gate lets through
ALLOWED = 50  # batches of one order a run sends before it waits at the gate


@pytest.fixture
def shop(tmp_path: Path, gated_env: dict[str, str]) -> Path:
    """A webstore folder whose runs wait at a gate after 50 batches: long enough to watch and
    cancel, whatever the load (tests/support/gated_file.py). Its daemons need `gated_env`."""
    write_settings(tmp_path, {"task": {"batch_size": 1}, **gated_destination(tmp_path)})
    allow(tmp_path, ALLOWED)
    made = order_export(
        "demo", "--orders", str(ORDERS), "--malformed", "0", cwd=tmp_path, env=gated_env
    )
    assert made.returncode == 0, made.stderr
    return tmp_path


def start_daemon(daemons: list[DaemonProcess], folder: Path, env: dict[str, str]) -> DaemonProcess:
    daemon = DaemonProcess(folder, env)
    daemons.append(daemon)
    return daemon.wait_started()


async def attached_app(folder: Path) -> OrderExportApp:
    """The dashboard as `order-export` starts it while a daemon runs (run_dashboard)."""
    path = load_settings(folder / "settings.toml").control_socket_path
    return OrderExportApp(await remote_settings(path), control=AttachedControl(path))


def shows(app: OrderExportApp, text: str) -> bool:
    return text in " ".join(screen_text(app).split())


async def test_keys_act_on_the_daemon_and_q_leaves_it_running(
    shop: Path, daemons: list[DaemonProcess], gated_env: dict[str, str]
) -> None:
    daemon = start_daemon(daemons, shop, gated_env)
    app = await attached_app(shop)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(
            pilot, lambda: shows(app, f"attached to order-export daemon, pid {daemon.pid}")
        )

        await pilot.press("r")
        await wait_until(pilot, lambda: app.progress.active and app.progress.processed >= 50)
        run_id = app.progress.run_id
        assert shows(app, f"run {run_id} (manual) running")
        daemon.wait_for(lambda text: f"run {run_id} started (manual)" in text)

        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.progress.outcome == "cancelled", timeout=60)
        daemon.wait_for(lambda text: f"run {run_id} cancelled" in text)
        assert app.progress.processed < ORDERS

        await pilot.press("q")  # no question: the daemon goes on
        await wait_until(pilot, lambda: not app.is_running, what="the app to quit")
    assert daemon.running
    assert daemon.stop() == 0


async def test_a_setting_saved_from_the_form_is_applied_by_the_daemon(
    shop: Path, daemons: list[DaemonProcess], gated_env: dict[str, str]
) -> None:
    daemon = start_daemon(daemons, shop, gated_env)
    app = await attached_app(shop)
    path = load_settings(shop / "settings.toml").control_socket_path
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: shows(app, "attached to"))
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        editor = screen.field("task.max_items_to_skip").editor
        editor.focus()
        editor.value = "4"  # type: ignore[attr-defined]
        editor.cursor_position = 1  # type: ignore[attr-defined]
        await pilot.press("2")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: shows(app, "no changes"), timeout=60, what="the save")
        view = await AttachedControl(path).read_settings()
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
    assert view.data["task"]["max_items_to_skip"] == 42  # in force in the daemon
    assert load_settings(shop / "settings.toml").task.max_items_to_skip == 42  # and on disk
    assert daemon.running


async def test_a_killed_daemon_is_said_and_a_new_one_is_reattached(
    shop: Path, daemons: list[DaemonProcess], gated_env: dict[str, str]
) -> None:
    first = start_daemon(daemons, shop, gated_env)
    app = await attached_app(shop)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: shows(app, f"pid {first.pid}"))
        first.kill()
        await wait_until(pilot, lambda: shows(app, "DISCONNECTED"), timeout=30)
        assert f"pid {first.pid}" in app.process_text()  # the last picture stays
        second = start_daemon(daemons, shop, gated_env)
        await wait_until(
            pilot,
            lambda: shows(app, f"attached to order-export daemon, pid {second.pid}"),
            timeout=30,
        )
        await pilot.press("r")  # and the keys act on the new one
        await wait_until(pilot, lambda: app.progress.active, timeout=30)
        second.wait_for(lambda text: "started (manual)" in text)
        await pilot.press("q")
    assert second.stop() == 0


async def test_a_run_killed_with_its_daemon_ends_on_the_reattached_dashboard(
    shop: Path, daemons: list[DaemonProcess], gated_env: dict[str, str]
) -> None:
    """The dead daemon's run is not followed on: once re-attached, the dashboard shows it as
    the history records it (failed, interrupted) and the keys act as if no run is going."""
    first = start_daemon(daemons, shop, gated_env)
    app = await attached_app(shop)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: shows(app, f"pid {first.pid}"))
        await pilot.press("r")
        await wait_until(pilot, lambda: app.progress.active and app.progress.processed >= 20)
        dead_run = app.progress.run_id
        first.kill()
        await wait_until(pilot, lambda: shows(app, "DISCONNECTED"), timeout=30)
        second = start_daemon(daemons, shop, gated_env)
        await wait_until(
            pilot,
            lambda: shows(app, f"attached to order-export daemon, pid {second.pid}"),
            timeout=30,
        )
        await wait_until(
            pilot, lambda: not app.progress.active, timeout=30, what="the dead run dropped"
        )
        assert app.progress.run_id == dead_run
        assert app.progress.outcome == "failed"
        assert (app.progress.error or "").startswith("interrupted")
        await wait_until(pilot, lambda: shows(app, f"run {dead_run} (manual) ✗ failed"))

        await pilot.press("r")  # not refused: a new run starts on the new daemon
        await wait_until(
            pilot,
            lambda: app.progress.active and app.progress.run_id != dead_run,
            timeout=30,
            what="a new run",
        )
        second.wait_for(lambda text: "started (manual)" in text)
        await pilot.press("q")
    assert second.stop() == 0


async def test_an_attached_dashboard_lists_the_daemon_s_run_logs_through_the_socket(
    shop: Path, daemons: list[DaemonProcess], tmp_path: Path, gated_env: dict[str, str]
) -> None:
    daemon = start_daemon(daemons, shop, gated_env)
    daemon_settings = load_settings(shop / "settings.toml")
    path = daemon_settings.control_socket_path
    # This dashboard's own settings name an empty folder: what it lists is the daemon's.
    elsewhere = tmp_path / "not-the-daemon-s-logs"
    elsewhere.mkdir()
    settings = await remote_settings(path)
    settings = replace(settings, storage=replace(settings.storage, logs_dir=str(elsewhere)))
    app = OrderExportApp(settings, control=AttachedControl(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: shows(app, "attached to"))
        await pilot.press("r")
        await wait_until(pilot, lambda: app.progress.active and app.progress.processed >= 5)
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, LogsScreen))
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        await wait_until(
            pilot, lambda: screen.view.index.line_count > 0, timeout=30, what="the run log"
        )
        listed = await AttachedControl(path).run_logs()
        assert [Path(file.path) for file in listed] == run_log_files(daemon_settings.logs_dir_path)
        assert screen.view.path == Path(listed[0].path)
        assert shows(app, f"{listed[0].name}: ")
        await wait_until(pilot, lambda: shows(app, ", live"), what="the log marked live")
        await pilot.press("escape", "q")
    assert list(elsewhere.iterdir()) == []
    assert daemon.stop() == 0


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (.ci/run installs it)")
def test_three_dashboards_attached_at_once_see_the_same_run(
    shop: Path, daemons: list[DaemonProcess], gated_env: dict[str, str]
) -> None:
    """Three real dashboards in three terminals (tmux): the first starts a run, the second
    cancels it, all three show the one run end."""
    daemon = start_daemon(daemons, shop, gated_env)
    server = f"order-export-test-{os.getpid()}"
    terminals = [f"dash{n}" for n in range(3)]
    command = f"{sys.executable} -m order_export_tui"
    env = f"PYTHONPATH={gated_env['PYTHONPATH']}"

    def tmux(*args: str) -> str:
        done = subprocess.run(["tmux", "-L", server, *args], capture_output=True, text=True)
        return done.stdout

    def screen(name: str) -> str:
        return " ".join(tmux("capture-pane", "-p", "-t", name).split())

    def wait_for(name: str, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while text not in screen(name):
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} does not show {text!r}: {screen(name)[-400:]}")
            time.sleep(0.2)

    def wait_all(*texts: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not all(text in screen(name) for name in terminals for text in texts):
            if time.monotonic() > deadline:
                shown = {name: screen(name)[-400:] for name in terminals}
                raise AssertionError(f"not every dashboard shows {texts!r}: {shown}")
            time.sleep(0.2)

    try:
        for name in terminals:
            tmux(
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "120",
                "-y",
                "40",
                "-c",
                str(shop),
                f"env {env} {command}",
            )
        # The panels wrap their lines at the terminal's width: look for words, not sentences.
        wait_all("daemon, pid", str(daemon.pid))
        tmux("send-keys", "-t", terminals[0], "r")
        wait_all("running")
        run_id = daemon.wait_for(lambda text: "started (manual)" in text)
        tmux("send-keys", "-t", terminals[1], "c")
        wait_for(terminals[1], "Keep running")  # the confirmation is up: "y" answers it
        tmux("send-keys", "-t", terminals[1], "y")
        daemon.wait_for(lambda text: "cancelled in" in text, timeout=90)
        finished = next(
            line.split()[3] for line in daemon.output.splitlines() if "cancelled in" in line
        )
        wait_all(f"run {finished}", "cancelled")
        for name in terminals:
            tmux("send-keys", "-t", name, "q")
        assert run_id and daemon.running  # all three quit; the daemon goes on
    finally:
        tmux("kill-server")
