"""How a run's outcome reads: a colour and, for NO_COLOR terminals (Textual turns the screen
monochrome there), a symbol beside the word, so that nothing rests on colour alone."""

from __future__ import annotations

from rich.text import Text

from order_export_tui.service.events import CANCELLED, FAILED, SUCCEEDED

RUNNING = "running"

# outcome -> (symbol, style)
LOOKS: dict[str, tuple[str, str]] = {
    SUCCEEDED: ("✓", "green"),
    FAILED: ("✗", "bold red"),
    CANCELLED: ("■", "yellow"),
    RUNNING: ("▶", "bold"),
}


def outcome_label(outcome: str | None) -> str:
    """`✓ succeeded`, `✗ failed`, `■ cancelled`, `▶ running`; other words as they are."""
    if outcome is None:
        return "—"
    symbol = LOOKS.get(outcome, ("", ""))[0]
    return f"{symbol} {outcome}" if symbol else outcome


def outcome_text(outcome: str | None) -> Text:
    style = "" if outcome is None else LOOKS.get(outcome, ("", ""))[1]
    return Text(outcome_label(outcome), style=style)
