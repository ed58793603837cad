"""The counters panel: the current (or last) run's counters and the real-time traffic."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from order_export_tui.tui.formatting import count
from order_export_tui.tui.intake_status import IntakeStatus
from order_export_tui.tui.run_progress import RunProgress

RUN_COUNTERS = ("read", "new", "updated", "unchanged", "cancelled", "retried")
REAL_TIME_COUNTERS = ("queued", "held", "delivered", "retried", "skipped")


def skipped_text(progress: RunProgress) -> str:
    skipped = progress.counts.get("skipped", 0)
    if progress.skip_budget is None:
        return count(skipped)
    return f"{count(skipped)} / {count(progress.skip_budget)}"


class CountersPanel(Static):
    """Plain aligned text, not a Rich table: it is redrawn several times a second during a
    run, and a table costs several milliseconds of the event loop per redraw."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[str, ...] | None = None

    def on_mount(self) -> None:
        self.border_title = "Counters"

    def show(self, progress: RunProgress, intake: IntakeStatus) -> None:
        heading = "run" if progress.run_id is None else f"run {progress.run_id}"
        run_rows = [(name, count(progress.counts.get(name, 0))) for name in RUN_COUNTERS]
        run_rows.append(("skipped", skipped_text(progress)))
        intake_values = {
            "queued": intake.queued,
            "held": intake.held,
            "delivered": intake.delivered,
            "retried": intake.retried,
            "skipped": intake.skipped,
        }
        live_rows = [(name, count(intake_values[name])) for name in REAL_TIME_COUNTERS]
        live_rows += [("", "")] * (len(run_rows) - len(live_rows))
        width = max(len(value) for _, value in run_rows)
        lines = tuple(
            f"{run_name:<10}{run_value:>{width}}   {live_name:<10}{live_value:>5}".rstrip()
            for (run_name, run_value), (live_name, live_value) in zip(
                run_rows, live_rows, strict=True
            )
        )
        shown = (heading, *lines)
        if shown == self._shown:
            return
        first = self._shown is None
        self._shown = shown
        title = Content.assemble((f"{heading:<{10 + width + 3}}", "bold"), ("real-time", "bold"))
        # The same number of lines every time: no new layout needed.
        self.update(Content("\n").join([title, *map(Content, lines)]), layout=first)
