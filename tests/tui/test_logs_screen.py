"""The log browser: newest run first, a virtual view, search, live tail, history's Enter."""

from __future__ import annotations

from pathlib import Path

from order_export_tui.engine.runlogs import run_log_files
from order_export_tui.tui.history_table import RunHistoryTable
from order_export_tui.tui.log_view import LogView
from order_export_tui.tui.logs_screen import LogsScreen
from tests.tui.conftest import finish_run, screen_text, wait_until


async def open_logs(pilot) -> LogsScreen:  # type: ignore[no-untyped-def]
    await pilot.press("l")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, LogsScreen))
    screen = pilot.app.screen
    await wait_until(pilot, lambda: not screen.view.scanning and screen.view.index.line_count)
    return screen  # type: ignore[no-any-return]


async def test_the_viewer_shows_the_newest_run_s_log_and_finds_a_searched_word(make_app) -> None:
    app = make_app(orders=300, malformed=3)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        await pilot.press("r")
        await finish_run(pilot, app)
        newest = Path(app.control.state.recent_runs(1)[0].log_file or "")
        assert run_log_files(app.settings.logs_dir_path)[0] == newest

        screen = await open_logs(pilot)
        view = screen.view
        assert view.path == newest
        assert view.index.line_count == len(newest.read_text().splitlines())
        assert "run 2 started (manual)" in screen_text(app)

        await pilot.press("slash", *"SKIPPED", "enter")
        await wait_until(pilot, lambda: view.match_line is not None)
        first = view.match_line
        assert first is not None and "skipped" in view.line_text(first).lower()
        assert "skipped" not in "\n".join(view.line_text(n) for n in range(first)).lower()
        await pilot.press("n")
        await wait_until(pilot, lambda: view.match_line != first)
        second = view.match_line
        assert second is not None and second > first
        assert "skipped" in view.line_text(second).lower()
        assert f"line {second + 1}" in screen_text(app)
        await pilot.press("N")
        await wait_until(pilot, lambda: view.match_line == first)

        await pilot.press("slash", *"no-such-word", "enter")
        await wait_until(pilot, lambda: "not found" in screen_text(app))


async def test_enter_on_a_run_in_the_history_opens_that_run_s_log(make_app) -> None:
    app = make_app(orders=50, malformed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(2):
            await pilot.press("r")
            await finish_run(pilot, app)
        first_run = app.control.state.recent_runs()[-1]
        await pilot.press("1")
        assert app.query_one(RunHistoryTable).has_focus
        await pilot.press("down", "enter")  # the second row: run 1
        await wait_until(pilot, lambda: isinstance(app.screen, LogsScreen))
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        await wait_until(pilot, lambda: screen.view.index.line_count > 0)
        assert screen.view.path == Path(first_run.log_file or "")
        assert "run 1 started (manual)" in screen_text(app)


async def test_a_large_log_opens_at_once_and_is_read_only_where_shown(make_app, tmp_path) -> None:
    app = make_app(orders=10, malformed=0)
    logs = app.settings.logs_dir_path
    logs.mkdir(parents=True, exist_ok=True)
    big = logs / "run-20260101-000000-000099.log"
    line = "2026-01-01T00:00:00.000+00:00 batch {n} done: sent 100; run so far: read={n}00\n"
    with big.open("w") as handle:
        handle.writelines(line.format(n=n) for n in range(300_000))
        handle.write("2026-01-01T00:00:01.000+00:00 the needle is here\n")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_logs(pilot)
        view = screen.view
        assert view.path == big
        assert view.index.line_count == 300_001
        assert "batch 0 done" in screen_text(app)
        await pilot.press("G")
        await pilot.pause()
        assert "the needle is here" in screen_text(app)
        await pilot.press("g", "slash", *"needle", "enter")
        await wait_until(pilot, lambda: view.match_line == 300_000)
        assert "the needle is here" in screen_text(app)


async def test_the_running_run_s_log_is_tailed_live(make_app) -> None:
    app = make_app(orders=10, malformed=0)
    logs = app.settings.logs_dir_path
    logs.mkdir(parents=True, exist_ok=True)
    live = logs / "run-20260101-000000-000001.log"
    live.write_text("".join(f"line {n}\n" for n in range(100)))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_logs(pilot)
        view = screen.query_one(LogView)
        await pilot.press("G")  # at the end: follow
        with live.open("a") as handle:
            handle.write("".join(f"appended {n}\n" for n in range(50)))
        await wait_until(pilot, lambda: view.index.line_count == 150, what="the tail")
        await pilot.pause(0.1)
        assert "appended 49" in screen_text(app)
