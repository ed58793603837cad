"""The settings form: every key of settings.toml as the file holds it now, grouped as the file
is, checked by the loader's own rules as you type; Save writes only the keys edited here (the
rest of the file, comments included, stays as it is) and applies it at once. A save over a file
that changed since the form read it is refused, and the form offers to read it again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Select, Static, Switch

from order_export_tui.settings import Settings
from order_export_tui.tui.confirm_screen import ConfirmScreen
from order_export_tui.tui.keys import Key
from order_export_tui.tui.setting_field import SettingField
from order_export_tui.tui.settings_form import FormCheck, check, field_specs, flat_values


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    problems: list[str]  # by key; [] once saved
    changed_since_read: bool = False  # nothing saved: the file is not the one the form read
    revision: str = ""  # the file's revision after the save


# Saves the changed keys through the process that runs exports, on the file's `revision`.
Apply = Callable[[Settings, dict[str, Any], str], Awaitable[SaveOutcome]]


class SettingsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Key(
            "ctrl+s,f2",
            "save",
            "Save",
            key_display="^s",
            id="save_settings",
            title="Save settings",
            summary="Write settings.toml and apply it",
        ),
        Binding("escape", "leave", "Back", id="leave_settings"),
    ]

    def __init__(
        self,
        settings: Settings,
        apply: Apply,
        *,
        revision: str = "",
        file_problems: list[str] | None = None,
        reload: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self._apply = apply
        self._saved = flat_values(settings)
        self.revision = revision
        self.file_problems = list(file_problems or [])
        self._reload = reload
        self.last_check: FormCheck | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        problems = Static(self._file_problems_text(), id="settings-file-problems", markup=False)
        problems.display = bool(self.file_problems)
        yield problems
        with VerticalScroll(id="settings-form"):
            for group, specs in groupby(field_specs(self.settings), key=attrgetter("group")):
                with Vertical(classes="settings-group") as box:
                    box.border_title = escape(f"[{group}]")
                    for spec in specs:
                        yield SettingField(spec, self._saved[spec.key])
        with Horizontal(id="settings-bar"):
            yield Static(id="settings-status")
            yield Button("Save (^s)", id="settings-save", variant="primary")
            yield Button("Back (Esc)", id="settings-back")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"settings: {self.settings.path.name}"
        self._show_status()
        if self.file_problems:
            self.notify(
                "The settings file is not valid; the form shows the settings in force. Fix: "
                + "; ".join(self.file_problems),
                severity="error",
                timeout=30,
            )
        self.query(SettingField).first().editor.focus()

    def _file_problems_text(self) -> str:
        lines = "\n".join(f"  {problem}" for problem in self.file_problems)
        return (
            "The settings file is not valid (the settings in force are shown; saving writes"
            f" the keys named here as the form has them):\n{lines}"
        )

    def _broken_keys(self) -> set[str]:
        """The keys the file's problems name: a save writes them even when the form holds the
        value in force, so that saving fixes the file."""
        named = {problem.split(":", 1)[0].strip() for problem in self.file_problems}
        return named & set(self._saved)

    # --- reading the form --------------------------------------------------------------------

    @property
    def fields(self) -> list[SettingField]:
        return list(self.query(SettingField))

    def field(self, key: str) -> SettingField:
        return self.query_one("#field-" + key.replace(".", "-"), SettingField)

    def values(self) -> dict[str, Any]:
        return {field.spec.key: field.value for field in self.fields}

    @property
    def dirty(self) -> bool:
        return self.values() != self._saved

    def validate_form(self) -> FormCheck:
        fields = self.fields
        values = {field.spec.key: field.value for field in fields}
        result = check(values, self.settings.path, values.keys())
        for field in fields:
            field.show_problems(result.at_field.get(field.spec.key, []))
        self.last_check = result
        self._show_status(values)
        return result

    def _show_status(self, values: dict[str, Any] | None = None) -> None:
        status = self.query_one("#settings-status", Static)
        result = self.last_check
        problems = 0 if result is None else sum(map(len, result.at_field.values()))
        problems += 0 if result is None else len(result.elsewhere)
        parts = []
        if problems:
            parts.append(f"{problems} problem{'s' if problems != 1 else ''}: not saved")
        if result is not None and result.elsewhere:
            parts.append("; ".join(result.elsewhere))
        dirty = (values if values is not None else self.values()) != self._saved
        parts.append("unsaved changes" if dirty else "no changes")
        status.update(" · ".join(parts), layout=False)
        status.set_class(bool(problems), "-invalid")

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        if self.is_mounted and self.fields:
            self.validate_form()

    # --- saving and leaving ------------------------------------------------------------------

    def action_save(self) -> bool:
        result = self.validate_form()
        if result.settings is None:
            self.notify("Not saved: fix the fields marked in red.", severity="error")
            self._focus_first_problem(result)
            return False
        self.run_worker(self._save(result.settings), group="save", exclusive=True)
        return True

    def changes(self) -> dict[str, Any]:
        """The keys edited here, with their new values (and the keys the broken file's
        problems name)."""
        broken = self._broken_keys()
        return {
            key: value
            for key, value in self.values().items()
            if value != self._saved[key] or key in broken
        }

    async def _save(self, settings: Settings) -> None:
        outcome = await self._apply(settings, self.changes(), self.revision)
        if outcome.changed_since_read:
            self._offer_reload()
            return
        if outcome.problems:
            self.notify("Not saved: " + "; ".join(outcome.problems), severity="error")
            return
        self.settings = settings
        self.revision = outcome.revision
        self._saved = flat_values(settings)
        self.file_problems = []  # the file validates now: it was saved through the same rules
        self.query_one("#settings-file-problems", Static).display = False
        self._show_status()

    def _offer_reload(self) -> None:
        def answered(reload: bool | None) -> None:
            if reload and self._reload is not None:
                self._reload()

        self.app.push_screen(
            ConfirmScreen(
                "Not saved: the settings file changed since this form read it (edited by hand"
                " or saved from another dashboard). Read it again? Your edits here are dropped.",
                yes="Reload",
                no="Keep editing",
            ),
            answered,
        )

    def _focus_first_problem(self, result: FormCheck) -> None:
        for field in self.fields:
            if field.spec.key in result.at_field:
                field.editor.focus()
                return

    def action_leave(self) -> None:
        self.confirm_leave(lambda: self.app.pop_screen())

    def confirm_leave(self, leave: Callable[[], object]) -> None:
        """Run `leave` now, or once the operator chose to discard the unsaved changes."""
        if not self.dirty:
            leave()
            return

        def answered(discard: bool | None) -> None:
            if discard:
                leave()

        self.app.push_screen(
            ConfirmScreen(
                "The settings have unsaved changes. Discard them?", yes="Discard", no="Keep editing"
            ),
            answered,
        )

    @on(Button.Pressed, "#settings-save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#settings-back")
    def _back_pressed(self) -> None:
        self.action_leave()
