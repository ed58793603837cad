"""The dry run as a connector: `destination.app = "file"`, the [file] table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from order_export_tui.settings import DestinationConnector, Required, Settings, resolve_path
from order_export_tui.settings.checks import STR
from order_export_tui.settings.model import shown_path

if TYPE_CHECKING:
    from order_export_tui.destinations.base import Destination


@dataclass
class FileSettings:
    path: str = "exports/orders.jsonl"


def file_path(settings: Settings) -> Path:
    """The dry run's file, resolved against the settings file's folder."""
    return resolve_path(settings, CONNECTOR.section_of(settings).path)


def open_file_destination(settings: Settings) -> Destination:
    from order_export_tui.destinations.file.destination import FileDestination

    # It writes Dotdigital's requests, into the collection Dotdigital's settings name.
    return FileDestination(
        file_path(settings),
        store_name=settings.webstore.name,
        collection=settings.dotdigital.collection,
    )


CONNECTOR = DestinationConnector(
    name="file",
    section="file",
    settings=FileSettings,
    factory=open_file_destination,
    rules={"path": STR},
    descriptions={
        "path": "The JSON Lines file the file destination (dry run) writes request bodies to."
    },
    summary="dry run: writes the exact request bodies",
    table_description='The dry run (destination.app = "file").',
    title="file, dry run",
    required=(Required("path"),),
    file_keys=("path",),
    status_facts=lambda section, settings: [("", shown_path(settings, section.path))],
    identity=lambda section, settings: f"file:{file_path(settings)}",
    order=30,
)
