"""The dashboard's keys as operators of k9s, lazygit and htop expect them: j / k, g / G and `/`
in every list, panel keys that fight no habit, refused keys that say why, resend, backfill."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.tui.confirm_screen import ConfirmScreen
from order_export_tui.tui.history_table import RunHistoryTable
from order_export_tui.tui.inputs import backfill_day, order_ids
from order_export_tui.tui.prompt_screen import PromptScreen
from order_export_tui.tui.skipped_table import SkippedOrdersTable
from tests.support.loopback_destination import LoopbackDestination
from tests.tui.conftest import finish_run, gated, screen_text, wait_until


def notices(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [notification.message for notification in app._notifications]


async def run_times(pilot, app, times: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(times):
        await pilot.press("r")
        await finish_run(pilot, app)


async def test_j_k_g_G_move_in_the_history_and_1_2_switch_the_tables(make_app) -> None:
    app = make_app(orders=20, malformed=3)
    async with app.run_test(size=(120, 40)) as pilot:
        await run_times(pilot, app, 4)
        history = app.query_one(RunHistoryTable)
        await wait_until(pilot, lambda: history.row_count == 4)
        await pilot.press("1")
        assert history.has_focus and history.selected_key == "4"
        await pilot.press("j", "j")
        assert history.selected_key == "2"
        await pilot.press("k")
        assert history.selected_key == "3"
        await pilot.press("G")
        assert history.selected_key == "1"
        await pilot.press("g")
        assert history.selected_key == "4"
        await pilot.press("down", "up", "down")
        assert history.selected_key == "3"

        skipped = app.query_one(SkippedOrdersTable)
        await pilot.press("2")
        assert skipped.has_focus and skipped.row_count == 3
        await pilot.press("G")
        assert skipped.cursor_row == 2
        await pilot.press("g", "j")
        assert skipped.cursor_row == 1


async def test_slash_filters_the_focused_table_and_esc_clears_it(make_app) -> None:
    app = make_app(orders=20, malformed=3)
    async with app.run_test(size=(120, 40)) as pilot:
        await run_times(pilot, app, 1)
        skipped = app.query_one(SkippedOrdersTable)
        await wait_until(pilot, lambda: skipped.row_count == 3)
        ids = [order.order_id for order in app.control.state.skipped_orders()]
        wanted = ids[1]
        await pilot.press("2", "slash", *wanted)
        assert skipped.shown_keys == [wanted]
        assert "1 of 3 orders" in screen_text(app)
        await pilot.press("enter")  # keeps the filter, back in the table
        assert skipped.has_focus and skipped.selected_order_id == wanted
        await pilot.press("escape")
        assert skipped.row_count == 3 and skipped.filter_text == ""

        history = app.query_one(RunHistoryTable)
        await pilot.press("1", "slash", *"no such run")
        assert history.row_count == 0 and skipped.row_count == 3  # only the focused table
        await pilot.press("escape")  # in the filter line: clears and closes it
        assert history.has_focus and history.row_count == 1


async def test_refused_keys_say_why_in_one_line(make_app) -> None:
    gate = gated(free_batches=0)
    app = make_app(orders=100, malformed=0, destination_factory=gate.factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("c")
        assert not isinstance(app.screen, ConfirmScreen)
        assert "No run to cancel." in notices(app)
        await pilot.press("r")
        await wait_until(pilot, lambda: gate.waiting)
        await wait_until(pilot, lambda: app.run_in_progress)
        await pilot.press("r")
        assert "A run is already in progress (run 1)." in notices(app)
        await pilot.press("R")
        assert not isinstance(app.screen, PromptScreen)
        app.clear_notifications()
        await pilot.press("r", "r")  # one notice per fact, however often the key is pressed
        assert notices(app) == ["A run is already in progress (run 1)."]
        gate.open()
        await finish_run(pilot, app)
        assert len(app.control.state.recent_runs()) == 1


async def test_the_history_cursor_follows_the_newest_run_unless_the_operator_moved(
    make_app,
) -> None:
    app = make_app(orders=20, malformed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        history = app.query_one(RunHistoryTable)
        await run_times(pilot, app, 2)
        await wait_until(pilot, lambda: history.row_count == 2)
        assert history.selected_key == "2"
        await run_times(pilot, app, 1)
        await wait_until(pilot, lambda: history.row_count == 3)
        assert history.selected_key == "3"  # followed the newest run
        await pilot.press("1", "j")
        assert history.selected_key == "2"
        await run_times(pilot, app, 1)
        await wait_until(pilot, lambda: history.row_count == 4)
        assert history.selected_key == "2"  # the operator's choice stays
        await pilot.press("g")
        await run_times(pilot, app, 1)
        await wait_until(pilot, lambda: history.row_count == 5)
        assert history.selected_key == "5"  # back on top: following again


async def test_R_resends_the_selected_skipped_order_or_a_typed_id(make_app, loopback) -> None:
    server, store = loopback
    app = make_app(
        orders=60,
        malformed=0,
        destination_factory=lambda settings: LoopbackDestination(server.url),
    )
    async with app.run_test(size=(120, 40)) as pilot:
        store.reject["SO-100007"] = "unknown contact"
        await run_times(pilot, app, 1)
        assert store.writes["SO-100012"] == 1
        skipped = app.query_one(SkippedOrdersTable)
        await wait_until(pilot, lambda: skipped.row_count == 1)
        store.reject.clear()

        await pilot.press("2", "R")
        prompt = app.screen
        assert isinstance(prompt, PromptScreen)
        assert prompt.editor.value == "SO-100007"  # the selected skipped order
        await pilot.press("enter")
        await finish_run(pilot, app)
        assert app.control.service.engine.last_report.trigger == "resend"  # type: ignore[union-attr]
        assert store.writes["SO-100007"] == 1

        await pilot.press("1", "R")
        prompt = app.screen
        assert isinstance(prompt, PromptScreen) and prompt.editor.value == ""
        await pilot.press("enter")  # nothing typed: says so, stays open
        assert isinstance(app.screen, PromptScreen)
        assert "type at least one order id" in screen_text(app)
        await pilot.press(*"SO-100012")
        await pilot.press("enter")
        await finish_run(pilot, app)
        assert store.writes["SO-100012"] == 2  # unchanged, sent again exactly once
        assert any(text.startswith("Re-sending SO-100012") for text in notices(app))


async def test_R_with_an_unknown_id_names_it_as_not_found_in_the_end_notice(make_app) -> None:
    app = make_app(orders=20, malformed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("R")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"SO-100003 SO-NOPE-1", "enter")
        await finish_run(pilot, app)

        [end] = [text for text in notices(app) if "orders confirmed" in text]
        lines = end.splitlines()
        assert lines[0] == "1 of 2 orders confirmed (run 1 succeeded)"
        assert lines[1].startswith("SO-100003  sent: confirmed by ")
        assert lines[2].startswith("SO-NOPE-1  not found: not in the ERP")
        assert not any(text.startswith("Run 1 succeeded") for text in notices(app))


async def test_backfill_from_the_palette_checks_the_day_then_runs(make_app) -> None:
    app = make_app(orders=50, malformed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Backfill from a date", "Resend orders"} <= titles
        app.action_backfill()
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"2026-02-30", "enter")
        assert isinstance(app.screen, PromptScreen)
        assert "2026-02-30 is not a day of the calendar" in screen_text(app)
        editor = app.screen.editor
        editor.value = ""
        since = (app.clock().date() - timedelta(days=30)).isoformat()
        await pilot.press(*since, "enter")
        await finish_run(pilot, app)
        report = app.control.service.engine.last_report
        assert report is not None and report.trigger == "backfill"
        assert report.counts["new"] == 50


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ABCSO-0123456789_", min_size=1, max_size=12), max_size=8))
def test_order_ids_read_back_whatever_separators_were_typed(ids: list[str]) -> None:
    for separator in (" ", ", ", ";", "\n"):
        assert order_ids(separator.join(ids)) == list(dict.fromkeys(ids))


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)), st.text(max_size=12))
def test_backfill_day_takes_past_days_and_says_what_is_wrong_otherwise(
    day: date, text: str
) -> None:
    today = date(2026, 12, 1)
    answer = backfill_day(day.isoformat(), today)
    assert answer == day if day <= today else "in the future" in str(answer)
    other = backfill_day(text, today)
    assert isinstance(other, date) or (isinstance(other, str) and other and "\n" not in other)
