"""The settings form: every key, the loader's validation at the field, atomic save applied at
once, unsaved changes guarded, secrets shown only as set / missing."""

from __future__ import annotations

import difflib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from order_export_tui.settings import SETTING_DESCRIPTIONS, load_settings
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.tui.confirm_screen import ConfirmScreen
from order_export_tui.tui.dashboard_screen import DashboardScreen
from order_export_tui.tui.setting_field import SettingField
from order_export_tui.tui.settings_screen import SettingsScreen
from tests.support.settings_files import SHIPPED
from tests.tui.conftest import build_app, screen_text, wait_until


async def open_settings(pilot) -> SettingsScreen:  # type: ignore[no-untyped-def]
    await pilot.press("s")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))
    return pilot.app.screen  # type: ignore[no-any-return]


async def type_into(pilot, screen: SettingsScreen, key: str, text: str) -> None:  # type: ignore[no-untyped-def]
    editor = screen.field(key).editor
    assert isinstance(editor, Input)
    editor.focus()
    # The text goes in at once but for its last character, which is typed: every keystroke
    # costs a round of validation and layout, and one of them exercises the key path.
    editor.value = text[:-1]
    editor.cursor_position = len(editor.value)
    await pilot.press(text[-1])
    await pilot.pause()


def field_error(screen: SettingsScreen, key: str) -> str:
    return str(screen.field(key).query_one(".field-error", Static).render())


async def test_the_form_has_every_key_with_its_description(make_app) -> None:
    app = make_app(orders=10, malformed=0)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot)
        keys = [field.spec.key for field in screen.query(SettingField)]
        assert set(keys) == set(SETTING_DESCRIPTIONS)
        assert keys[0] == "task.run_on_schedule" and keys[-1] == "storage.control_socket"
        for field in screen.query(SettingField):
            label = str(field.query_one(".field-label", Static).render())
            assert label == f"{field.spec.name}\n{SETTING_DESCRIPTIONS[field.spec.key]}"


async def test_a_saved_change_is_in_the_file_and_in_force_at_once(make_app) -> None:
    app = make_app(
        orders=10, malformed=0, task={"run_on_schedule": True, "run_interval_minutes": 60}
    )
    path = app.settings.path
    async with app.run_test(size=(80, 24)) as pilot:
        before = app.control.service.next_run
        assert before is not None
        screen = await open_settings(pilot)
        await type_into(pilot, screen, "task.run_interval_minutes", "15")
        assert "unsaved changes" in screen_text(app)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "no changes" in screen_text(app), what="the save")

        assert load_settings(path).task.run_interval_minutes == 15
        assert app.settings.task.run_interval_minutes == 15
        assert app.control.service.settings.task.run_interval_minutes == 15
        after = app.control.service.next_run
        assert after is not None and after < before - timedelta(minutes=40)
        assert "no changes" in screen_text(app)
        await pilot.press("escape")  # nothing unsaved: leaves without asking
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert "every 15 minutes" in screen_text(app)


async def test_an_invalid_value_is_refused_at_its_field_and_the_file_is_unchanged(
    make_app,
) -> None:
    app = make_app(orders=10, malformed=0)
    path = app.settings.path
    original = path.read_bytes()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot)
        await type_into(pilot, screen, "task.batch_size", "0")
        assert (
            field_error(screen, "task.batch_size") == "must be an integer from 1 to 10000 (got 0)"
        )
        assert "must be an integer from 1 to 10000 (got 0)" in screen_text(app)
        await type_into(pilot, screen, "email.to", "admin@example.com, not-an-address")
        assert "not a valid e-mail address" in field_error(screen, "email.to")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert path.read_bytes() == original
        assert app.settings.task.batch_size == 50
        assert screen.field("task.batch_size").editor.has_focus  # taken to the first problem

        await type_into(pilot, screen, "task.batch_size", "ten")
        assert field_error(screen, "task.batch_size") == (
            'must be an integer from 1 to 10000 (got "ten")'
        )
        await type_into(pilot, screen, "task.batch_size", "25")
        assert field_error(screen, "task.batch_size") == ""


async def test_a_rule_across_keys_shows_at_the_key_the_loader_names(make_app) -> None:
    app = make_app(
        orders=10, malformed=0, task={"run_on_schedule": True, "run_interval_minutes": 60}
    )
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot)
        await type_into(pilot, screen, "task.run_time", "02:30")
        assert "not both" in field_error(screen, "task.run_time")
        await type_into(pilot, screen, "task.run_interval_minutes", "0")
        assert field_error(screen, "task.run_time") == ""
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.settings.task.run_time == "02:30", what="the save")
        assert load_settings(app.settings.path).task.run_time == "02:30"
        next_run = app.control.service.next_run
        assert next_run is not None and next_run.strftime("%H:%M") == "02:30"


async def test_leaving_with_unsaved_changes_asks_first(make_app) -> None:
    app = make_app(orders=10, malformed=0)
    original = app.settings.path.read_bytes()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot)
        await type_into(pilot, screen, "webstore.name", "Other shop")
        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep editing
        assert app.screen is screen
        assert screen.field("webstore.name").value == "Other shop"
        await pilot.press("escape", "y")  # discard
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert app.settings.path.read_bytes() == original
        assert app.settings.webstore.name == "Test webstore"


@pytest.mark.parametrize("state", ["set", "missing"])
async def test_secrets_show_only_the_variable_name_and_whether_it_is_set(
    make_app, monkeypatch, state: str
) -> None:
    secret = "s3cr3t-never-shown"
    if state == "set":
        monkeypatch.setenv("DOTDIGITAL_API_PASSWORD", secret)
    else:
        monkeypatch.delenv("DOTDIGITAL_API_PASSWORD", raising=False)
    app = make_app(orders=10, malformed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_settings(pilot)
        field = screen.field("dotdigital.password_env")
        shown = str(field.query_one(".field-secret", Static).render())
        assert shown == f"DOTDIGITAL_API_PASSWORD: {state}"
        every_text = [str(widget.render()) for widget in screen.query(Static)]
        every_text += [editor.value for editor in screen.query(Input)]
        assert not any(secret in text for text in every_text)
        field.editor.focus()
        await pilot.pause()
        assert secret not in screen_text(app)


async def test_saving_the_shipped_file_from_the_form_keeps_it_and_its_comments(
    tmp_path: Path, state_factory: Any
) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(SHIPPED.read_bytes())
    settings = load_settings(path)
    generate_demo_erp(demo_database_path(settings), orders=10, seed=1, days=10, malformed=0)
    app = build_app(settings, state_factory(settings))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_settings(pilot)
        inode = path.stat().st_ino
        await pilot.press("ctrl+s")  # nothing changed
        await wait_until(pilot, lambda: path.stat().st_ino != inode, what="the save")
        assert path.stat().st_ino != inode  # rewritten, not skipped
        assert path.read_bytes() == SHIPPED.read_bytes()

        await type_into(pilot, screen, "task.batch_size", "250")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.settings.task.batch_size == 250, what="the save")
        assert app.settings.task.batch_size == 250

    diff = difflib.unified_diff(
        SHIPPED.read_text().splitlines(), path.read_text().splitlines(), n=0, lineterm=""
    )
    changed = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-batch_size = 100", "+batch_size = 250"]


async def test_the_form_shows_a_hand_edit_and_a_save_keeps_it_and_its_comment(
    make_app,
) -> None:
    app = make_app(orders=10, malformed=0)
    path = app.settings.path
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        # Edited by hand while the dashboard runs (the running process has not reloaded it).
        path.write_text(
            path.read_text().replace(
                "max_items_to_skip = 10",
                "# raised for Black Friday, ask Piet\nmax_items_to_skip = 11  # was 10",
            )
        )
        screen = await open_settings(pilot)
        assert screen.field("task.max_items_to_skip").value == 11
        await type_into(pilot, screen, "task.max_retries", "5")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "no changes" in screen_text(app), what="the save")

    text = path.read_text()
    assert "# raised for Black Friday, ask Piet\nmax_items_to_skip = 11  # was 10\n" in text
    assert load_settings(path).task.max_retries == 5
    assert app.settings.task.max_items_to_skip == 11


async def test_a_save_over_a_file_changed_since_the_form_read_it_offers_to_reload(
    make_app,
) -> None:
    app = make_app(orders=10, malformed=0)
    path = app.settings.path
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot)
        await type_into(pilot, screen, "task.max_retries", "5")
        path.write_text(path.read_text().replace("batch_size = 50", "batch_size = 70"))
        edited = path.read_bytes()

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the offer")
        offer = app.screen
        assert isinstance(offer, ConfirmScreen)
        assert "changed since this form read it" in offer.question
        assert path.read_bytes() == edited  # nothing overwritten
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, SettingsScreen) and app.screen is not screen,
            what="the form read again",
        )
        again = app.screen
        assert isinstance(again, SettingsScreen)
        assert again.field("task.batch_size").value == 70
        assert again.field("task.max_retries").value == 3  # the edit was dropped, as asked
