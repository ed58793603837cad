"""The log lines on screen in full, wrapped (w in the log browser): a reason longer than the
log view is wide, read without scrolling sideways."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class FullLinesScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,w", "leave", "Back")]

    def __init__(self, title: str, lines: Sequence[tuple[int, str]]) -> None:
        """`lines`: (line number from 0, text) in file order."""
        super().__init__()
        self.title_text = title
        self.lines = list(lines)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="full-lines"):
            for line_no, text in self.lines:
                yield Static(
                    Text.assemble((f"{line_no + 1:>6} ", "dim"), text),
                    classes="full-line",
                )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = self.title_text
        scroll = self.query_one("#full-lines", VerticalScroll)
        scroll.border_title = self.title_text
        scroll.focus()

    def action_leave(self) -> None:
        self.dismiss(None)
