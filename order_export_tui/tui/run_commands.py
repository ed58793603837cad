"""The keys that start or stop a run: run (r), cancel (c), resend (R), backfill, retry, and
quit (q), which asks before it stops a run in flight.

Each asks first where it should (a prompt, a confirmation), refuses in one line when it cannot
act now, and sends its command to the process that runs exports.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from order_export_tui.service.control_client import NotAttachedError
from order_export_tui.tui.confirm_screen import ConfirmScreen
from order_export_tui.tui.inputs import backfill_day, order_ids, order_ids_problem
from order_export_tui.tui.prompt_screen import PromptScreen
from order_export_tui.tui.run_progress import CANCELLING
from order_export_tui.tui.settings_screen import SettingsScreen
from order_export_tui.tui.skipped_table import SkippedOrdersTable

if TYPE_CHECKING:
    from order_export_tui.tui.app import OrderExportApp

# Keys that start or stop a run: refused with a one-line reason when they cannot act now.
REFUSABLE = frozenset({"run_now", "cancel_run", "resend", "backfill", "retry"})


class RunCommands:
    def __init__(self, app: OrderExportApp) -> None:
        self.app = app

    def refusal(self, action: str) -> str | None:
        """Why `action` cannot act now (one line), None when it can."""
        app = self.app
        if action in {"run_now", "resend", "backfill", "retry"} and app.run_in_progress:
            return f"A run is already in progress (run {app.progress.run_id})."
        if action == "cancel_run":
            if not app.run_in_progress:
                return "No run to cancel."
            if app.progress.state == CANCELLING:
                return f"Run {app.progress.run_id} is already cancelling at the next batch."
        return None

    def refused(self, action: str) -> bool:
        """Say why `action` cannot act now, if it cannot."""
        reason = self.refusal(action)
        if reason is not None:
            self.app.notify(reason, severity="warning")
        return reason is not None

    def send(self, command: Awaitable[None]) -> None:
        """Send a command to the process that runs exports; a lost process is said once."""

        async def send() -> None:
            try:
                await command
            except NotAttachedError as error:
                self.app.notify(f"Not done: {error}.", severity="error")

        self.app.run_worker(send(), group="commands")

    # --- the commands ----------------------------------------------------------------------

    def run_now(self) -> None:
        if not self.refused("run_now"):
            self.send(self._start("manual", "Run"))

    def resend(self) -> None:
        """Send orders again even if unchanged; the selected skipped order is offered."""
        if self.refused("resend"):
            return
        focused = self.app.screen.focused
        selected = focused.selected_order_id if isinstance(focused, SkippedOrdersTable) else None

        def answered(text: str | None) -> None:
            if text:
                ids = order_ids(text)
                started = f"Re-sending {', '.join(ids)}"
                self.send(self._start("resend", "Resend", only=ids, started=started))

        prompt = PromptScreen(
            "Resend orders",
            "Send these orders to the destination again, even if unchanged"
            " (ids separated by spaces):",
            check=order_ids_problem,
            value=selected or "",
            placeholder="SO-100042",
            yes="Resend",
        )
        self.app.push_screen(prompt, answered)

    def backfill(self) -> None:
        """Every order dated on or after a day, this once, beyond the export window."""
        if self.refused("backfill"):
            return
        today = self.app.clock().date()

        def check(text: str) -> str | None:
            day = backfill_day(text, today)
            return day if isinstance(day, str) else None

        def answered(text: str | None) -> None:
            if text:
                started = f"Backfilling every order dated {text} or later"
                self.send(self._start("backfill", "Backfill", since=text, started=started))

        prompt = PromptScreen(
            "Backfill from a date",
            "Export every order dated on or after this day, once, beyond the export window:",
            check=check,
            placeholder="YYYY-MM-DD",
            yes="Backfill",
        )
        self.app.push_screen(prompt, answered)

    def cancel(self) -> None:
        if self.refused("cancel_run"):
            return

        def answered(cancel: bool | None) -> None:
            if cancel:
                self.send(self._cancel())

        question = (
            f"Cancel run {self.app.progress.run_id}? It stops at the next batch boundary; every"
            " batch the destination answered is recorded, the rest is sent by the next run."
        )
        self.app.push_screen(ConfirmScreen(question, yes="Cancel run", no="Keep running"), answered)

    def retry(self, order_ids: frozenset[str] | None) -> None:
        """Re-try these skipped orders (None: every one)."""
        if not self.refused("retry"):
            self.send(self._retry(order_ids))

    async def quit(self) -> None:
        """Quit, asking first while a run is in flight here; pressed again while stopping,
        abandon the batch in flight."""
        app = self.app
        if app.stopping:
            if not app.attached:
                app.notify("Abandoning the batch in flight; it is sent again next time.")
                await app.control.stop(abandon_batch=True)
            return
        screen = app.screen
        if isinstance(screen, SettingsScreen):
            screen.confirm_leave(self._confirm_quit)
        else:
            self._confirm_quit()

    def _confirm_quit(self) -> None:
        app = self.app
        if app.attached or not app.run_in_progress:
            app.shut_down()
            return

        def answered(quit_now: bool | None) -> None:
            if quit_now:
                app.shut_down()

        question = (
            f"Run {app.progress.run_id} is in flight. Stop it at the next batch boundary and"
            " quit? (To keep exporting without a screen, use `order-export daemon`.)"
        )
        app.push_screen(ConfirmScreen(question, yes="Stop and quit", no="Keep running"), answered)

    # --- sending ---------------------------------------------------------------------------

    async def _start(
        self,
        trigger: str,
        what: str,
        *,
        only: list[str] | None = None,
        since: str | None = None,
        started: str = "",
    ) -> None:
        answer = await self.app.control.start_run(trigger, only=only, since=since)
        if not answer.ok:
            self.app.notify(f"{what} {answer.message}.", severity="warning")
        elif started:
            run = "" if answer.run_id is None else f" (run {answer.run_id})"
            self.app.notify(f"{started}{run}.")

    async def _cancel(self) -> None:
        answer = await self.app.control.cancel()
        if not answer.ok:
            self.app.notify(f"Not cancelled: {answer.message}.", severity="warning")

    async def _retry(self, order_ids: frozenset[str] | None) -> None:
        chosen = None if order_ids is None else sorted(order_ids)
        answer = await self.app.control.retry_skipped(chosen)
        if answer.ok:
            what = "every skipped order" if chosen is None else ", ".join(chosen)
            self.app.notify(f"Re-trying {what}.")
        else:
            self.app.notify(f"Not re-tried: {answer.message}.", severity="warning")
