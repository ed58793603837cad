"""A small dialog that asks for one line (an order id, a day), checks it and returns it."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

Check = Callable[[str], str | None]  # the problem with the text, None when it is fine


class PromptScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        question: str,
        *,
        check: Check,
        value: str = "",
        placeholder: str = "",
        yes: str = "OK",
    ) -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._check = check
        self._value = value
        self._placeholder = placeholder
        self._yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-dialog") as dialog:
            dialog.border_title = self._title
            dialog.border_subtitle = "Enter confirms, Esc cancels"
            yield Static(self._question, id="prompt-question")
            yield Input(self._value, placeholder=self._placeholder, id="prompt-input")
            yield Static(id="prompt-problem")
            with Horizontal(id="prompt-buttons"):
                yield Button(self._yes, variant="primary", id="prompt-yes")
                yield Button("Cancel", id="prompt-no")

    def on_mount(self) -> None:
        self.query_one("#prompt-problem", Static).display = False

    @property
    def editor(self) -> Input:
        return self.query_one("#prompt-input", Input)

    @on(Input.Submitted, "#prompt-input")
    @on(Button.Pressed, "#prompt-yes")
    def _confirm(self) -> None:
        text = self.editor.value.strip()
        problem = self._check(text)
        shown = self.query_one("#prompt-problem", Static)
        if problem is not None:
            shown.update(problem)
            shown.display = True
            self.editor.focus()
            return
        self.dismiss(text)

    @on(Button.Pressed, "#prompt-no")
    def action_cancel(self) -> None:
        self.dismiss(None)
