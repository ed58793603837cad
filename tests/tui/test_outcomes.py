"""Run outcomes read at a glance, in colour and without it, and the progress panel tells the
truth once a run is over (issue 17 items 1 and 7)."""

from __future__ import annotations

import re

from order_export_tui.tui.history_table import RunHistoryTable
from tests.support.scripted_destinations import RefusingDestination
from tests.tui.conftest import exported_figure, finish_run, gated, screen_text, wait_until


def outcome_cell(app, run_id: int):  # type: ignore[no-untyped-def]
    return app.query_one(RunHistoryTable).get_cell(str(run_id), "outcome")


def flat(app) -> str:  # type: ignore[no-untyped-def]
    return " ".join(screen_text(app).split())


async def test_a_succeeded_run_is_green_and_says_so_in_words(make_app, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(orders=1, malformed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.no_color  # a monochrome screen: the word and symbol carry the meaning
        await pilot.press("r")
        await finish_run(pilot, app)
        await wait_until(pilot, lambda: "✓ succeeded" in screen_text(app))
        cell = outcome_cell(app, 1)
        assert str(cell) == "✓ succeeded" and "green" in str(cell.style)
        text = flat(app)
        assert "idle; run 1 ✓ succeeded" in text
        assert "run 1 (manual) ✓ succeeded" in text
        assert "batch 1 of 1, 1 of 1 order" in text and "1 of 1 orders" not in text
        await wait_until(
            pilot, lambda: exported_figure(app) == "1 order of the last 30 days confirmed"
        )
        assert "took" in text and "ETA" not in text


async def test_a_failed_run_that_sent_nothing_is_red_and_claims_no_batch(make_app) -> None:
    app = make_app(orders=500, malformed=0, destination_factory=RefusingDestination)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await finish_run(pilot, app)
        await wait_until(pilot, lambda: "✗ failed" in screen_text(app))
        cell = outcome_cell(app, 1)
        assert str(cell) == "✗ failed" and "red" in str(cell.style)
        text = flat(app)
        assert "nothing sent, 0 of 500 orders" in text
        assert not re.search(r"batch \d+ of \d+, 0 of 500", text)
        assert "ETA" not in text
        assert exported_figure(app) == "0 orders of the last 30 days confirmed"


async def test_a_cancelled_run_is_yellow_and_shows_no_eta(make_app) -> None:
    gate = gated(free_batches=2)
    app = make_app(orders=500, malformed=0, destination_factory=gate.factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: gate.waiting)
        await pilot.press("c", "y")
        await wait_until(pilot, lambda: app.progress.state == "cancelling")
        gate.open()
        await finish_run(pilot, app)
        await wait_until(pilot, lambda: "■ cancelled" in screen_text(app))
        cell = outcome_cell(app, 1)
        assert "yellow" in str(cell.style)
        text = flat(app)
        assert "ETA" not in text
        assert "batch 3 of 10, 150 of 500 orders" in text
