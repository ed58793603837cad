"""One settings key in the form: its name, description, editor and the loader's verdict."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult, RenderResult
from textual.containers import Vertical
from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Input, Select, Static, Switch

from order_export_tui.settings import secret_value
from order_export_tui.tui.settings_form import (
    BOOL,
    CHOICE,
    SECRET,
    FieldSpec,
    from_text,
    to_text,
)


def secret_state(variable: str) -> str:
    """Whether the variable is set; never its value."""
    if not variable:
        return ""
    return "set" if secret_value(variable) is not None else "missing"


class OnOffSwitch(Switch):
    """A switch that says "on" or "off" in words where colour is off (NO_COLOR): there its
    slider is drawn in the one colour of its background, a blank."""

    def render(self) -> RenderResult:
        if not self.app.no_color:
            return super().render()
        return Content("[on ]" if self.value else "[off]")

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return 5 if self.app.no_color else super().get_content_width(container, viewport)


class SettingField(Vertical):
    def __init__(self, spec: FieldSpec, value: Any) -> None:
        super().__init__(id="field-" + spec.key.replace(".", "-"), classes="setting-field")
        self.spec = spec
        self._initial = value
        self._problems: list[str] = []

    def compose(self) -> ComposeResult:
        spec = self.spec
        yield Static(
            Content.assemble((spec.name, "bold"), "\n", (spec.description, "dim")),
            classes="field-label",
        )
        yield self._editor()
        if spec.kind == SECRET:
            yield Static(classes="field-secret")
        yield Static(classes="field-error", markup=False)

    def _editor(self) -> Widget:
        spec, value, editor_id = (
            self.spec,
            self._initial,
            "editor-" + self.spec.key.replace(".", "-"),
        )
        if spec.kind == BOOL:
            return OnOffSwitch(value=bool(value), id=editor_id)
        if spec.kind == CHOICE:
            options = [(choice, choice) for choice in spec.choices]
            return Select(options, value=value, allow_blank=False, id=editor_id, compact=True)
        return Input(to_text(spec.kind, value), id=editor_id, compact=True, select_on_focus=False)

    def on_mount(self) -> None:
        self._show_secret()

    @property
    def editor(self) -> Widget:
        return self.children[1]

    @property
    def value(self) -> Any:
        editor = self.editor
        if isinstance(editor, Switch):
            return editor.value
        if isinstance(editor, Select):
            return editor.value
        assert isinstance(editor, Input)
        return from_text(self.spec.kind, editor.value)

    def set_value(self, value: Any) -> None:
        editor = self.editor
        if isinstance(editor, Switch | Select):
            editor.value = value
        else:
            assert isinstance(editor, Input)
            editor.value = to_text(self.spec.kind, value)

    def show_problems(self, problems: list[str]) -> None:
        if problems == self._problems:
            return  # most keystrokes change nothing here: skip the repaint
        self._problems = problems
        self.query_one(".field-error", Static).update("\n".join(problems))
        self.set_class(bool(problems), "-invalid")

    def _show_secret(self) -> None:
        if self.spec.kind != SECRET:
            return
        name = str(self.value)
        state = secret_state(name)
        label = self.query_one(".field-secret", Static)
        label.update(f"{name}: {state}" if state else "")
        label.set_class(state == "missing", "-missing")

    def on_input_changed(self) -> None:
        self._show_secret()
