"""One notice per fact: a failure e-mail that cannot be sent is said once, not as stacked
toasts (issue 17 item 9); the settings screen shows its keys from the start (item 4)."""

from __future__ import annotations

import socket

import pytest

from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.export_service import ExportService
from order_export_tui.service.notify import notify_run_failed
from order_export_tui.service.wiring import build_source
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.tui import OrderExportApp
from order_export_tui.tui.settings_screen import SettingsScreen
from tests.support.scripted_destinations import RefusingDestination
from tests.tui.conftest import finish_run, hosted_control, screen_text, wait_until


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_failure_e_mail_that_cannot_be_sent_is_one_notice(
    make_settings, state_factory
) -> None:
    settings = make_settings(
        task={"send_email_on_failure": True},
        email={"smtp_host": "127.0.0.1", "smtp_port": closed_port()},
    )
    generate_demo_erp(demo_database_path(settings), orders=20, seed=3, days=5, malformed=0)
    state = state_factory(settings)
    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=RefusingDestination
    )
    service = ExportService(settings, engine, notifier=notify_run_failed)
    app = OrderExportApp(settings, control=hosted_control(service, state))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        await wait_until(
            pilot,
            lambda: any("e-mail" in n.message for n in app._notifications),
            what="the e-mail notice",
        )
        await pilot.pause(0.3)
        about_email = [n.message for n in app._notifications if "e-mail" in n.message]
        assert len(about_email) == 1, about_email
        assert about_email[0].startswith("Failure e-mail NOT sent")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_settings_screen_shows_its_footer_before_any_tab(make_app, size) -> None:
    app = make_app(orders=10, malformed=0)
    async with app.run_test(size=size) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "^s Save" in footer and "esc Back" in footer
