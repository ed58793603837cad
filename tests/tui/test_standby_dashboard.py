"""The dashboard attached to a standby daemon (interfaces.md §10) shows the leader's run live,
as the leader publishes its events, and steers it: its cancel reaches the leader."""

from __future__ import annotations

from pathlib import Path

from order_export_tui.service.control_client import AttachedControl
from order_export_tui.settings import load_settings
from order_export_tui.tui import OrderExportApp, remote_settings
from order_export_tui.tui.confirm_screen import ConfirmScreen
from tests.support.daemon_process import DaemonProcess, order_export, start_command
from tests.support.gated_file import allow, gated_destination
from tests.support.postgres import PostgresServer
from tests.support.state_backends import postgres_state_url
from tests.test_cluster import daemon_folder
from tests.tui.conftest import screen_text, wait_until

ORDERS = 200  # more than the gate lets through before the cancel


def shows(app: OrderExportApp, text: str) -> bool:
    return text in " ".join(screen_text(app).split())


async def test_a_dashboard_attached_to_a_standby_shows_the_leaders_run_live_and_cancels_it(
    postgres_server: PostgresServer,
    postgres_database: str,
    tmp_path: Path,
    daemons: list,
    gated_env: dict[str, str],
) -> None:
    url = postgres_state_url(postgres_server, postgres_database)
    task = {"task": {"batch_size": 1, "run_on_schedule": False}, **gated_destination(tmp_path)}
    first = daemon_folder(tmp_path, "a", url, **task)
    second = daemon_folder(tmp_path, "b", url, **task)
    allow(tmp_path, 20)  # the leader's run waits there: it cannot end before the cancel
    made = order_export(
        "demo", "--orders", str(ORDERS), "--malformed", "0", cwd=first, env=gated_env
    )
    assert made.returncode == 0, made.stderr
    leader = DaemonProcess(first, gated_env)
    daemons.append(leader)
    leader.wait_started()
    standby = DaemonProcess(second, gated_env)
    daemons.append(standby)
    standby.wait_for(lambda text: "standby: serving the control socket" in text)
    path = load_settings(second / "settings.toml").control_socket_path
    app = OrderExportApp(await remote_settings(path), control=AttachedControl(path))

    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(
            pilot, lambda: shows(app, f"attached to order-export daemon, pid {standby.pid}")
        )
        # the leader's run, started on its machine
        follower = start_command("run", cwd=first, env=gated_env)
        await wait_until(pilot, lambda: app.progress.active and app.progress.processed >= 20)
        run_id = app.progress.run_id
        seen = app.progress.processed
        assert shows(app, f"run {run_id} (manual) running")
        allow(tmp_path, 40)
        await wait_until(pilot, lambda: app.progress.processed > seen)  # it moves on, live
        status = await app.control.status()
        assert status.run is not None and status.run.run_id == run_id
        assert status.run.orders_done > 0

        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        try:
            await wait_until(pilot, lambda: app.progress.outcome == "cancelled", timeout=60)
        except AssertionError as error:
            shown = (app.progress.run_id, app.progress.outcome, app.progress.processed)
            raise AssertionError(
                f"{error}; shown {shown}; leader said: {leader.output[-3000:]}"
            ) from None
        leader.wait_for(lambda text: f"run {run_id} cancelled" in text)
        assert follower.wait(60) != 0  # the run it followed was cancelled
        history = await app.control.recent_runs(5)
        assert [(run.run_id, run.outcome) for run in history][:1] == [(run_id, "cancelled")]
        assert app.progress.processed < ORDERS
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running, what="the app to quit")
    assert standby.running and leader.running
