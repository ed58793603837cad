"""Builds the configured ERP source and destination from settings."""

from __future__ import annotations

from order_export_tui.destinations.base import Destination
from order_export_tui.destinations.file import FileDestination
from order_export_tui.engine.retry import Retrier
from order_export_tui.settings import Settings
from order_export_tui.sources.base import OrderSource
from order_export_tui.sources.demo import DemoErpSource, ensure_demo_erp


class NotAvailableError(Exception):
    """The settings name a connector this version does not have yet."""


def build_source(settings: Settings, retrier: Retrier) -> OrderSource:
    if settings.erp.source == "demo":
        path = settings.demo_database_path
        ensure_demo_erp(path)
        return DemoErpSource(path)
    raise NotAvailableError(
        f"erp.source = {settings.erp.source!r} is not available in this version yet"
    )


def build_destination(settings: Settings) -> Destination:
    if settings.destination.app == "file":
        return FileDestination(
            settings.file_path,
            store_name=settings.webstore.name,
            collection=settings.dotdigital.collection,
        )
    raise NotAvailableError(
        f"destination.app = {settings.destination.app!r} is not available in this version yet"
    )


def check_available(settings: Settings) -> list[str]:
    """Problems, each naming its key, for connectors this version cannot build."""
    problems = []
    if settings.erp.source != "demo":
        problems.append(f"erp.source: {settings.erp.source!r} is not available in this version yet")
    if settings.destination.app != "file":
        problems.append(
            f"destination.app: {settings.destination.app!r} is not available in this version yet"
        )
    return problems
