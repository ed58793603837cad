"""The keys of the dashboard and of the screen it was opened from (? or F1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KeyHelp = tuple[str, str]  # (keys as shown, what they do)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[KeyHelp]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog") as dialog:
            dialog.border_title = "Keys"
            dialog.border_subtitle = "Esc closes"
            for title, keys in self.sections:
                table = Table.grid(padding=(0, 2))
                table.add_column(style="bold", no_wrap=True, min_width=12)
                table.add_column()
                for key, description in keys:
                    table.add_row(key, description)
                yield Static(f"[b]{title}[/]", classes="help-title")
                yield Static(table, classes="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)
