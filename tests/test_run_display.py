"""What `order-export run`, `resend` and `retry` show on stderr as a run starts."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from rich.console import Console

from order_export_tui.cli import _run_here
from order_export_tui.run_display import RunDisplay
from order_export_tui.service.session import hosted_session
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path


def shown_lines(make_settings: Any, runs: list[tuple[str, list[str] | None]]) -> list[str]:
    """The first line each run shows, the runs made one after the other in this process."""
    settings = make_settings()
    generate_demo_erp(demo_database_path(settings), orders=20, seed=3, days=10, malformed=0)
    firsts = []
    for trigger, only in runs:
        out = io.StringIO()
        display = RunDisplay(Console(file=out, force_terminal=False, width=200))
        with hosted_session(settings, role=trigger) as session:
            asyncio.run(_run_here(session, display.handle, trigger, only=only))
        firsts.append(out.getvalue().splitlines()[0])
    return firsts


def test_a_resend_says_how_many_orders_it_was_given_not_a_window(make_settings: Any) -> None:
    run, resend, resend_one = shown_lines(
        make_settings,
        [("manual", None), ("resend", ["SO-100003", "SO-NOPE-1"]), ("resend", ["SO-100003"])],
    )

    assert run.startswith("run 1: orders dated on or after ")
    assert run.endswith(" (20 in the window)")
    assert resend == "run 2: resend of 2 orders"
    assert resend_one == "run 3: resend of 1 order"
