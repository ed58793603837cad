"""The verify screen (v): reads the platform's copy back and compares it with the ERP
(interfaces.md §8), then shows the drift by kind with counts and each order with both
values; `p` repairs it (asking first), `v` verifies again. It only holds the verify call of
the `ExportControl`, so it works the same hosted and attached to a daemon."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from order_export_tui.service.control_client import NotAttachedError
from order_export_tui.service.verify_answer import KINDS, DriftItem, VerifyAnswer
from order_export_tui.tui.confirm_screen import ConfirmScreen
from order_export_tui.tui.settled_table import SettledTable

Verify = Callable[[bool], Awaitable[VerifyAnswer]]

COLUMNS = ("Order", "Kind", "Field", "Platform", "ERP", "")


def kind_line(answer: VerifyAnswer) -> str:
    """`missing 2 · different 1 · extra 0`: the drifting orders of each kind."""
    orders = {kind: set[str]() for kind in KINDS}
    for item in answer.drift:
        orders[item.kind].add(item.order_id)
    return "  ·  ".join(f"{kind} {len(orders[kind])}" for kind in KINDS)


def value_text(value: str | int | float | None, item: DriftItem) -> str:
    if item.kind != "different":
        return ""
    if value is None:
        return "(not a number)"
    return str(value) if value != "" else '""'


class VerifyScreen(Screen[None]):
    AUTO_FOCUS = "#verify-drift"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back", id="leave_verify"),
        Binding(
            "p",
            "repair",
            "Repair",
            id="repair_drift",
            tooltip="Repair the drift shown (asks first)",
        ),
        Binding("v", "verify_again", "Verify again", id="verify_again"),
    ]

    def __init__(self, verify: Verify) -> None:
        """`verify(repair)`: the process that runs exports verifies (and repairs)."""
        super().__init__()
        self._verify = verify
        self.answer: VerifyAnswer | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="verify-summary")
        yield Static(id="verify-kinds")
        yield SettledTable(id="verify-drift", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "verify the platform's copy"
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.start(repair=False)

    def start(self, *, repair: bool) -> None:
        self.busy = True
        doing = "Repairing, then reading the copy again" if repair else "Reading the copy back"
        self.query_one("#verify-summary", Static).update(f"{doing} and comparing it with the ERP…")
        self._run(repair)

    @work(group="verify", exclusive=True, exit_on_error=False)
    async def _run(self, repair: bool) -> None:
        try:
            answer = await self._verify(repair)
        except NotAttachedError as error:
            answer = VerifyAnswer(False, str(error))
        self.busy = False
        if self.is_attached:
            self.show(answer)

    def show(self, answer: VerifyAnswer) -> None:
        self.answer = answer
        self.query_one("#verify-summary", Static).update(answer.summary())
        self.query_one("#verify-kinds", Static).update(kind_line(answer) if answer.drift else "")
        table = self.query_one(DataTable)
        table.clear()
        fixed = set(answer.repaired)
        for item in answer.drift:
            table.add_row(
                item.order_id,
                item.kind,
                item.field or "",
                value_text(item.platform, item),
                value_text(item.erp, item),
                "repaired" if item.order_id in fixed else "",
            )

    def action_repair(self) -> None:
        answer = self.answer
        if self.busy or answer is None:
            self.notify("The verify is still reading.", severity="warning")
            return
        drifting = {item.order_id for item in answer.remaining}
        if not drifting:
            self.notify("Nothing to repair: no drift left.", severity="information")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.start(repair=True)

        self.app.push_screen(
            ConfirmScreen(
                f"Repair {len(drifting)} {'order' if len(drifting) == 1 else 'orders'}? The"
                " ERP's version is sent (the extra orders as cancelled) in a run of its own,"
                " then the copy is read again."
            ),
            answered,
        )

    def action_verify_again(self) -> None:
        if not self.busy:
            self.start(repair=False)

    def action_leave(self) -> None:
        self.dismiss(None)
