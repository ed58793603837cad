"""The status panel: what this dashboard drives and what it is doing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from order_export_tui.service.export_service import schedule_description
from order_export_tui.settings import Settings
from order_export_tui.tui.formatting import clock_time, relative_to
from order_export_tui.tui.intake_status import IntakeStatus
from order_export_tui.tui.outcomes import outcome_text
from order_export_tui.tui.run_progress import CANCELLING, RUNNING, RunProgress


@dataclass(frozen=True, slots=True)
class StatusView:
    settings: Settings
    progress: RunProgress
    next_run: datetime | None
    intake: IntakeStatus
    exported: int | None = None  # orders the destination has confirmed, per the state database
    scheduler_problem: str | None = None
    process: str = ""  # which process runs the exports this dashboard shows


def erp_text(settings: Settings) -> str:
    if settings.erp.source == "demo":
        return f"demo ({relative_to(settings.demo_database_path, settings.path.parent)})"
    return f"{settings.erp.source} ({settings.erp.business_central.base_url or 'no URL'})"


def destination_text(settings: Settings) -> str:
    app = settings.destination.app
    if app == "file":
        return f"file, dry run ({relative_to(settings.file_path, settings.path.parent)})"
    if app == "dotdigital":
        dotdigital = settings.dotdigital
        return f"dotdigital ({dotdigital.region}, collection {dotdigital.collection})"
    if app == "mailchimp":
        return f"mailchimp (store {settings.mailchimp.store_id or '—'})"
    return app


def scheduler_text(view: StatusView) -> str:
    if view.scheduler_problem:
        return f"stopped: {view.scheduler_problem}"
    plan = schedule_description(view.settings)
    if view.next_run is None:
        return plan
    return f"{plan}; next run {clock_time(view.next_run)}"


def run_state_text(progress: RunProgress) -> Text:
    if progress.state == RUNNING:
        return Text.assemble(("running", "bold"), f" (run {progress.run_id}, {progress.trigger})")
    if progress.state == CANCELLING:
        return Text.assemble(("cancelling", "bold"), f" (run {progress.run_id}, at the next batch)")
    if progress.outcome is None:
        return Text("idle")
    # Short enough for the 80-column layout's value column: the outcome does not wrap.
    return Text.assemble(f"idle; run {progress.run_id} ", outcome_text(progress.outcome))


class StatusPanel(Static):
    def on_mount(self) -> None:
        self.border_title = "Status"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: list[tuple[str, Text]] = []

    def show(self, view: StatusView) -> None:
        rows = [
            ("Webstore", Text(view.settings.webstore.name)),
            *([("Process", Text(view.process))] if view.process else []),
            ("ERP source", Text(erp_text(view.settings))),
            ("Destination", Text(destination_text(view.settings))),
            ("Scheduler", Text(scheduler_text(view))),
            ("Run", run_state_text(view.progress)),
        ]
        if view.exported is not None:
            noun = "order" if view.exported == 1 else "orders"
            exported = f"{view.exported:,} {noun} confirmed by the destination"
            rows.append(("Exported", Text(exported)))
        rows.append(("Real-time", Text(view.intake.summary)))
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
