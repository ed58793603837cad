"""The status panel: what this dashboard drives and what it is doing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from order_export_tui.service.export_service import schedule_description
from order_export_tui.settings import Settings, destination_identity
from order_export_tui.settings.connectors import (
    Connector,
    destination_connector,
    source_connector,
)
from order_export_tui.tui.formatting import next_run_time
from order_export_tui.tui.intake_status import LISTENING, IntakeStatus
from order_export_tui.tui.outcomes import outcome_text
from order_export_tui.tui.run_progress import CANCELLING, RUNNING, RunProgress

COMPACT_WIDTH = 23  # the value column of the 80-column layout's status panel


@dataclass(frozen=True, slots=True)
class StatusView:
    settings: Settings
    progress: RunProgress
    next_run: datetime | None
    intake: IntakeStatus
    # Orders of the export window the destination has confirmed, per the state database.
    exported: int | None = None
    scheduler_problem: str | None = None
    process: str = ""  # which process runs the exports this dashboard shows
    process_compact: str = ""  # the same in the few words of an 80-column panel
    # The identity of the destination whose copy `exported` counts (the status's): named
    # on the Exported row when the Destination row (these settings) names another one.
    destination: str = ""
    now: datetime | None = None  # the wall clock, for the seconds before the next run


def erp_text(settings: Settings, *, compact: bool = False) -> str:
    return connector_text(
        settings.erp.source, source_connector(settings.erp.source), settings, compact
    )


def destination_text(settings: Settings, *, compact: bool = False) -> str:
    app = settings.destination.app
    return connector_text(app, destination_connector(app), settings, compact)


def connector_text(
    name: str, connector: Connector[Any] | None, settings: Settings, compact: bool
) -> str:
    """ "dotdigital (r1, collection Orders)": the connector's title and its own facts."""
    if connector is None:
        return name
    title = connector.title or connector.name
    facts = connector.status_facts(connector.section_of(settings), settings)
    if compact or not facts:
        return title
    shown = ", ".join(f"{label} {value}" if label else value for label, value in facts)
    return f"{title} ({shown})"


def exported_text(exported: int, settings: Settings, *, compact: bool = False) -> str:
    """What the Exported figure counts: the export window's orders that the destination
    holds as last confirmed. `compact`: on one line of the 80-column panel's value column,
    in fewer words as the figures grow."""
    days = settings.task.max_days_to_export
    span = f"last {days} {'day' if days == 1 else 'days'}"
    if not compact:
        noun = "order" if exported == 1 else "orders"
        return f"{exported:,} {noun} of the {span} confirmed"
    shorter = (f"{exported:,} of the {span}", f"{exported:,}, {span}")
    return next(
        (text for text in shorter if len(text) <= COMPACT_WIDTH), f"{exported:,} ({days} d)"
    )


def scheduler_text(view: StatusView) -> str:
    if view.scheduler_problem:
        return f"stopped: {view.scheduler_problem}"
    plan = schedule_description(view.settings)
    if view.next_run is None:
        return plan
    return f"{plan}; next run {next_run_time(view.next_run, view.now)}"


def run_state_text(progress: RunProgress, *, compact: bool = False) -> Text:
    if progress.state == RUNNING:
        return Text.assemble(("running", "bold"), f" (run {progress.run_id}, {progress.trigger})")
    if progress.state == CANCELLING:
        where = "" if compact else ", at the next batch"
        return Text.assemble(("cancelling", "bold"), f" (run {progress.run_id}{where})")
    if progress.outcome is None:
        return Text("idle")
    # Short enough for the 80-column layout's value column: the outcome does not wrap.
    return Text.assemble(f"idle; run {progress.run_id} ", outcome_text(progress.outcome))


def intake_text(intake: IntakeStatus, *, compact: bool = False) -> str:
    if compact and intake.state == LISTENING:
        return f"listening, {intake.waiting}"
    return intake.summary


def rows_of(view: StatusView, *, compact: bool) -> list[tuple[str, Text]]:
    """The panel's rows. `compact` (an 80-column terminal): the webstore is left to the
    header, and each value is cut to what fits on one line of the half-width panel, so that
    the run history keeps its rows; the settings screen has the rest."""
    process = view.process_compact if compact else view.process
    rows = [
        *([] if compact else [("Webstore", Text(view.settings.webstore.name))]),
        *([("Attached to" if compact else "Process", Text(process))] if process else []),
        ("ERP source", Text(erp_text(view.settings, compact=compact))),
        ("Destination", Text(destination_text(view.settings, compact=compact))),
    ]
    if compact:
        rows.append(("Scheduler", Text(scheduler_text(replace(view, next_run=None)))))
        if view.next_run is not None and not view.scheduler_problem:
            rows.append(("Next run", Text(next_run_time(view.next_run, view.now))))
    else:
        rows.append(("Scheduler", Text(scheduler_text(view))))
    rows.append(("Run", run_state_text(view.progress, compact=compact)))
    if view.exported is not None:
        exported = exported_text(view.exported, view.settings, compact=compact)
        if view.destination and view.destination != destination_identity(view.settings).identity:
            exported += f" by {view.destination}"
        rows.append(("Exported", Text(exported)))
    rows.append(("Real-time", Text(intake_text(view.intake, compact=compact))))
    return rows


class StatusPanel(Static):
    def on_mount(self) -> None:
        self.border_title = "Status"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: list[tuple[str, Text]] = []

    def show(self, view: StatusView) -> None:
        rows = rows_of(view, compact=self.screen.has_class("-narrow"))
        if rows == self._rows:
            return  # the usual case of the once-a-second refresh
        layout = [len(text) for _, text in rows] != [len(text) for _, text in self._rows]
        self._rows = rows
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for name, text in rows:
            grid.add_row(name, text)
        self.update(grid, layout=layout)
