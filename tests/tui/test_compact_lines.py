"""At 80 columns each line of the progress panel fits its 36 characters, whatever the run's
size and length (issue 17 item 6: "ETA" wrapped onto its own line)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.tui.progress_panel import COMPACT_WIDTH, batch_text, timing_text
from order_export_tui.tui.run_progress import RUNNING, RunProgress

NOW = 10_000_000.0


@st.composite
def runs_in_flight(draw: st.DrawFn) -> RunProgress:
    total = draw(st.integers(0, 9_999_999))
    batch_size = draw(st.integers(1, 10_000))
    processed = draw(st.integers(0, total))
    batches = max(1, -(-total // batch_size))
    elapsed = draw(st.floats(0, 99 * 3600))  # up to 99 hours
    return RunProgress(
        state=RUNNING,
        run_id=draw(st.integers(1, 999_999)),
        total=total,
        processed=processed,
        batch_no=draw(st.integers(1, batches)),
        batch_size=batch_size,
        started_monotonic=NOW - elapsed,
    )


@settings(max_examples=200, deadline=None)
@given(runs_in_flight())
def test_the_compact_progress_lines_fit_one_line_of_the_narrow_panel(run: RunProgress) -> None:
    assert len(batch_text(run, compact=True)) <= COMPACT_WIDTH, batch_text(run, compact=True)
    assert len(timing_text(run, NOW, compact=True)) <= COMPACT_WIDTH


def test_the_big_run_reads_x_of_y_until_it_cannot_and_then_x_slash_y() -> None:
    small = RunProgress(
        state=RUNNING, run_id=1, total=500, processed=150, batch_no=4, batch_size=50
    )
    assert batch_text(small, compact=True) == "batch 4 of 10, 150 of 500 orders"
    big = RunProgress(
        state=RUNNING, run_id=1, total=200_494, processed=123_400, batch_no=1_234, batch_size=100
    )
    assert batch_text(big) == "batch 1,234 of 2,005, 123,400 of 200,494 orders"
    assert batch_text(big, compact=True) == "batch 1,234/2,005, 123,400/200,494"
    huge = RunProgress(
        state=RUNNING, run_id=1, total=1_000_000, processed=1_000, batch_no=1_000, batch_size=1
    )
    assert batch_text(huge, compact=True) == "1,000/1,000,000"
    long = RunProgress(
        state=RUNNING, run_id=1, total=200_494, processed=123_400, started_monotonic=NOW - 3723
    )
    assert timing_text(long, NOW, compact=True) == "33/s, elapsed 1:02:03, ETA 38:46"


def test_a_rate_waits_for_half_a_second_of_a_run_but_a_short_finished_run_has_its_own() -> None:
    starting = RunProgress(
        state=RUNNING, run_id=1, total=500, processed=50, started_monotonic=NOW - 0.001
    )
    assert timing_text(starting, NOW) == "— orders/s, elapsed 0:00, ETA —"
    done = RunProgress(
        run_id=1, total=500, processed=500, duration_seconds=0.3, outcome="succeeded"
    )
    assert timing_text(done, NOW) == "1,667 orders/s, took 0:00"
