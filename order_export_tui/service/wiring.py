"""Builds the configured ERP source and destination from settings."""

from __future__ import annotations

import importlib

from order_export_tui.destinations.base import Destination
from order_export_tui.destinations.file import FileDestination
from order_export_tui.settings import Settings, missing_secrets, weak_secrets
from order_export_tui.sources.base import OrderSource
from order_export_tui.sources.demo import DemoErpSource, ensure_demo_erp
from order_export_tui.transport.retry import Retrier

# destination.app -> (module, class); each class has `from_settings(settings)`.
PLATFORM_DESTINATIONS = {
    "dotdigital": ("order_export_tui.destinations.dotdigital", "DotdigitalDestination"),
    "mailchimp": ("order_export_tui.destinations.mailchimp", "MailchimpDestination"),
}


class NotAvailableError(Exception):
    """The settings name a connector this version does not have yet."""


# erp.source -> (module, class); each class has `from_settings(settings, retrier)`.
ERP_SOURCES = {
    "business_central": (
        "order_export_tui.sources.business_central.source",
        "BusinessCentralSource",
    ),
}


def build_source(settings: Settings, retrier: Retrier) -> OrderSource:
    if settings.erp.source == "demo":
        path = settings.demo_database_path
        ensure_demo_erp(path)
        return DemoErpSource(path)
    source_class = _lazy_class(ERP_SOURCES, settings.erp.source)
    if source_class is None:
        raise NotAvailableError(
            f"erp.source = {settings.erp.source!r} is not available in this version yet"
        )
    return source_class.from_settings(settings, retrier)  # type: ignore[no-any-return]


def build_destination(settings: Settings) -> Destination:
    app = settings.destination.app
    if app == "file":
        return FileDestination(
            settings.file_path,
            store_name=settings.webstore.name,
            collection=settings.dotdigital.collection,
        )
    destination_class = _lazy_class(PLATFORM_DESTINATIONS, app)
    if destination_class is None:
        raise NotAvailableError(f"destination.app = {app!r} is not available in this version yet")
    return destination_class.from_settings(settings)  # type: ignore[no-any-return]


def _lazy_class(registry: dict[str, tuple[str, str]], name: str) -> type | None:
    if name not in registry:
        return None
    module_name, class_name = registry[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        return None
    return getattr(module, class_name)  # type: ignore[no-any-return]


def startup_problems(settings: Settings) -> list[str]:
    """What keeps `run`, `daemon` and the dashboard from starting: a connector this version
    lacks, a secret whose variable is unset, or one too weak to use (each problem names its
    key)."""
    return check_available(settings) + missing_secrets(settings) + weak_secrets(settings)


def check_available(settings: Settings) -> list[str]:
    """Problems, each naming its key, for connectors this version cannot build."""
    problems = []
    source = settings.erp.source
    if source != "demo" and _lazy_class(ERP_SOURCES, source) is None:
        problems.append(f"erp.source: {settings.erp.source!r} is not available in this version yet")
    app = settings.destination.app
    if app != "file" and _lazy_class(PLATFORM_DESTINATIONS, app) is None:
        problems.append(f"destination.app: {app!r} is not available in this version yet")
    return problems
