"""The line that says the terminal is smaller than the dashboard is laid out for."""

from __future__ import annotations

from textual.geometry import Size
from textual.widgets import Static

# The smallest terminal every panel fits in (docs/dashboard.md: "It works at 80x24").
MIN_WIDTH = 80
MIN_HEIGHT = 24


def size_hint(size: Size) -> str:
    """ "" when `size` is large enough; else what it is and what is needed."""
    if size.width >= MIN_WIDTH and size.height >= MIN_HEIGHT:
        return ""
    need = f"{MIN_WIDTH}x{MIN_HEIGHT}"
    return f"Terminal too small ({size.width}x{size.height}): need at least {need}"


class SizeHint(Static):
    """Shown only while the terminal is too small (`show_for`)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)

    def show_for(self, size: Size) -> None:
        text = size_hint(size)
        self.update(text)
        self.display = bool(text)
