"""The outbox's declaration: what order-export reads to know it (and nothing heavier)."""

from __future__ import annotations

from dataclasses import dataclass

from order_export_tui.settings import DestinationConnector, Required
from order_export_tui.settings.checks import STR, integer
from order_export_tui.settings.model import shown_path


@dataclass
class OutboxSettings:
    folder: str = "outbox"
    indent: int = 0


CONNECTOR = DestinationConnector(
    name="outbox",  # destination.app = "outbox"
    section="outbox",  # its keys live in [outbox]
    settings=OutboxSettings,
    factory="order_export_outbox.destination:OutboxDestination.from_settings",
    rules={"folder": STR, "indent": integer(0, 8)},
    descriptions={
        "folder": "The folder that receives one <order_id>.json file per order.",
        "indent": "Spaces of indentation in each file (0: one line).",
    },
    summary="one JSON file per order",
    table_description='The outbox folder (destination.app = "outbox").',
    required=(Required("folder"),),
    status_facts=lambda section, settings: [("", shown_path(settings, section.folder))],
)
