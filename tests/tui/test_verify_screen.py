"""The verify screen (v, or the palette's "Verify the platform's copy"): drift by kind with
counts, each order with both values, and p to repair (asking first), hosted and attached to
a real daemon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from order_export_tui.service.control_client import AttachedControl
from order_export_tui.settings import load_settings
from order_export_tui.tui import OrderExportApp, remote_settings
from order_export_tui.tui.confirm_screen import ConfirmScreen
from order_export_tui.tui.help_screen import HelpScreen
from order_export_tui.tui.verify_screen import VerifyScreen
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, order_export
from tests.support.drift_platforms import FilePlatform
from tests.support.file_output import file_records
from tests.tui.conftest import finish_run, screen_text, wait_until


def shows(app: Any, text: str) -> bool:
    return text in " ".join(screen_text(app).split())


def drift_the_file(folder: Path) -> tuple[str, str, str]:
    """One order deleted from the dry-run file, one changed: (deleted, changed, its value)."""
    records = file_records(load_settings(folder / "settings.toml"))
    platform = FilePlatform(folder)
    gone, altered = records[0], records[1]
    platform.delete({"order_id": gone["key"], "customer": {"email": gone["json"]["email"]}})
    body = dict(altered["json"])
    body["paymentStatus"] = "failed" if body["paymentStatus"] != "failed" else "paid"
    path = f"/insightData/v3/contacts/email/{body['email']}/Orders/{altered['key']}"
    with platform.path.open("a") as file:
        file.write(json.dumps({"method": "PUT", "path": path, "body": body}) + "\n")
    return gone["key"], altered["key"], body["paymentStatus"]


def verified(app: Any) -> bool:
    screen = app.screen
    return isinstance(screen, VerifyScreen) and not screen.busy and screen.answer is not None


async def repair_from_the_screen(app: Any, pilot: Any) -> None:
    await pilot.press("p")
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    await pilot.press("y")
    await wait_until(pilot, lambda: verified(app) and app.screen.answer.repaired, timeout=60)


async def test_v_shows_the_drift_by_kind_and_p_repairs_it_after_asking(
    make_app: Any, tmp_path: Path
) -> None:
    app = make_app(orders=30, malformed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        await pilot.press("v")
        await wait_until(pilot, lambda: verified(app))
        assert shows(app, "the platform's copy is true")
        gone, altered, value = drift_the_file(tmp_path)

        await pilot.press("v")  # again, on the screen
        await wait_until(pilot, lambda: verified(app) and app.screen.answer.drift)

        assert shows(app, "missing 1 · different 1 · extra 0")
        assert shows(app, gone) and shows(app, altered)
        assert shows(app, f"payment_status {value}")  # the platform's value, then the ERP's
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # asked first: no means nothing is sent
        await wait_until(pilot, lambda: isinstance(app.screen, VerifyScreen))
        assert app.screen.answer.repaired == ()
        await repair_from_the_screen(app, pilot)
        assert sorted(app.screen.answer.repaired) == sorted([gone, altered])
        assert shows(app, "the copy is true now") and shows(app, "repaired")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, VerifyScreen))


async def test_the_palette_and_the_help_offer_verify(make_app: Any) -> None:
    app = make_app(orders=10, malformed=0)
    async with app.run_test(size=(100, 80)) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Verify the platform's copy" in titles
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = " ".join(screen_text(app).replace("│", " ").split())
    assert "Verify the platform's copy against the ERP (and repair it)" in text
    assert "Repair the drift shown" in text and "Verify again" in text


async def test_the_verify_screen_attached_to_a_daemon(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    write_settings(tmp_path)
    made = order_export("demo", "--orders", "30", "--malformed", "0", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    daemon = DaemonProcess(tmp_path)
    daemons.append(daemon)
    daemon.wait_started()
    assert order_export("run", cwd=tmp_path).returncode == 0
    gone, altered, _ = drift_the_file(tmp_path)
    path = load_settings(tmp_path / "settings.toml").control_socket_path
    app = OrderExportApp(await remote_settings(path), control=AttachedControl(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: shows(app, f"pid {daemon.pid}"))
        await pilot.press("v")
        await wait_until(pilot, lambda: verified(app))
        assert shows(app, "missing 1 · different 1 · extra 0")
        await repair_from_the_screen(app, pilot)
        assert sorted(app.screen.answer.repaired) == sorted([gone, altered])
    daemon.wait_for(lambda text: "verify:" in text and "the copy is true now" in text)
    assert daemon.stop() == 0
