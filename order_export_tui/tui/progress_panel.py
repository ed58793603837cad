"""The batch progress panel: bar, batch x of y, orders per second, elapsed and ETA."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from order_export_tui.service.events import CANCELLED, FAILED, SUCCEEDED
from order_export_tui.tui.formatting import count, duration
from order_export_tui.tui.outcomes import outcome_label
from order_export_tui.tui.run_progress import RunProgress

COMPACT_WIDTH = 36  # the 80-column layout's right-hand panels, inside their padding


def batch_text(progress: RunProgress, *, compact: bool = False) -> str:
    """`compact`: too long for one line of the 80-column panel, "x of y" becomes "x/y" and
    "orders" goes, then the batch."""
    text = _batch_text(progress, " of ")
    if compact and len(text) > COMPACT_WIDTH:
        text = _batch_text(progress, "/").removesuffix(" orders").removesuffix(" order")
    if compact and len(text) > COMPACT_WIDTH:  # a million orders in batches of one: no batch
        text = text.split(", ", 1)[-1]
    return text


def _batch_text(progress: RunProgress, of_word: str) -> str:
    if progress.run_id is None:
        return "no run yet"
    batches = progress.batches_total
    of = "" if batches is None else f"{of_word}{batches:,}"
    total = "" if progress.total is None else f"{of_word}{count(progress.total)}"
    orders = f"{count(progress.processed)}{total} {plural(progress.total or progress.processed)}"
    if progress.active:
        return f"batch {progress.batch_no:,}{of}, {orders}"
    sent = progress.counts.get("new", 0) + progress.counts.get("updated", 0)
    if not progress.processed or not sent:  # every order unchanged (or skipped): say so
        return f"nothing sent, {orders}"
    if not progress.batch_no and not progress.batch_size:
        return orders  # a run this dashboard knows from its record only: no batches
    # Finished: the batches that were answered, not the one that was started last.
    done = progress.batch_no
    if progress.batch_size:
        done = math.ceil(progress.processed / progress.batch_size)
    return f"batch {done:,}{of}, {orders}"


def plural(n: int) -> str:
    return "order" if n == 1 else "orders"


def timing_text(progress: RunProgress, now: float, *, compact: bool = False) -> str:
    """`compact`: the 80-column panel's 36 characters hold even an hour-long run's line."""
    rate = progress.rate(now)
    speed = "—" if rate is None else f"{rate:,.0f}"
    speed += "/s" if compact else " orders/s"
    elapsed = duration(progress.elapsed(now))
    if not progress.active and progress.outcome is not None:
        return f"{speed}, took {elapsed}"  # no ETA for a run that is over
    eta = progress.eta(now)
    # Beyond four days an ETA says only "not soon" (the rate is far from what it will be).
    eta_text = "> 99 h" if eta is not None and eta >= 99 * 3600 else duration(eta)
    return f"{speed}, elapsed {elapsed}, ETA {eta_text}"


def outcome_text(progress: RunProgress) -> str:
    if progress.run_id is None:
        return "press r to run an export now"
    if progress.active:
        return f"run {progress.run_id} ({progress.trigger}) {progress.state}"
    text = f"run {progress.run_id} ({progress.trigger}) {outcome_label(progress.outcome)}"
    if progress.error:
        text += f": {progress.error}"
    return text


class ProgressPanel(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: dict[str, str] = {}

    def _set(self, selector: str, text: str) -> None:
        # Several times a second during a run: skip what did not change, and ask for a new
        # layout only when the text's length did (it may wrap differently then).
        before = self._shown.get(selector)
        if text == before:
            return
        self._shown[selector] = text
        layout = before is None or len(before) != len(text)
        self.query_one(selector, Static).update(text, layout=layout)

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=100, show_eta=False, id="run-bar")
        yield Static(id="run-batch")
        yield Static(id="run-timing")
        yield Static(id="run-outcome")

    def on_mount(self) -> None:
        self.border_title = "Batch progress"

    def show(self, progress: RunProgress, now: float) -> None:
        bar = self.query_one(ProgressBar)
        fraction = progress.fraction
        # An unknown total would make the bar animate forever; show it empty instead.
        bar.update(total=100, progress=0 if fraction is None else round(fraction * 100, 1))
        compact = self.screen.has_class("-narrow")
        self._set("#run-batch", batch_text(progress, compact=compact))
        self._set("#run-timing", timing_text(progress, now, compact=compact))
        self._set("#run-outcome", outcome_text(progress))
        outcome = self.query_one("#run-outcome", Static)
        outcome.set_class(progress.outcome == FAILED and not progress.active, "-failed")
        outcome.set_class(progress.outcome == SUCCEEDED and not progress.active, "-succeeded")
        outcome.set_class(progress.outcome == CANCELLED and not progress.active, "-cancelled")
