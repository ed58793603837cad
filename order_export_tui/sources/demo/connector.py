"""The demo ERP as a connector: `erp.source = "demo"`, its one key in [erp] itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from order_export_tui.settings import Required, Settings, SourceConnector, resolve_path
from order_export_tui.settings.checks import STR
from order_export_tui.settings.model import shown_path

if TYPE_CHECKING:
    from order_export_tui.sources.base import OrderSource
    from order_export_tui.transport.retry import Retrier


@dataclass
class DemoSettings:
    demo_database: str = "data/erp-demo.sqlite"


def demo_database_path(settings: Settings) -> Path:
    """The demo ERP's database file, resolved against the settings file's folder."""
    return resolve_path(settings, CONNECTOR.section_of(settings).demo_database)


def open_demo_source(settings: Settings, retrier: Retrier) -> OrderSource:
    from order_export_tui.sources.demo import DemoErpSource, ensure_demo_erp

    path = demo_database_path(settings)
    ensure_demo_erp(path)
    return DemoErpSource(path)


CONNECTOR = SourceConnector(
    name="demo",
    section="erp",  # legacy: `erp.demo_database` sits in the [erp] table itself
    settings=DemoSettings,
    factory=open_demo_source,
    rules={"demo_database": STR},
    descriptions={"demo_database": "The embedded demo ERP's SQLite database file."},
    summary="embedded SQLite ERP",
    required=(Required("demo_database"),),
    file_keys=("demo_database",),
    status_facts=lambda section, settings: [("", shown_path(settings, section.demo_database))],
    order=10,
)
