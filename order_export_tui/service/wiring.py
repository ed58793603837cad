"""Builds the configured ERP source and destination from settings, through the registry."""

from __future__ import annotations

from typing import Any

from order_export_tui.destinations.base import Destination
from order_export_tui.settings import Settings, missing_secrets, weak_secrets
from order_export_tui.settings.connectors import (
    Connector,
    destination_connector,
    load_factory,
    source_connector,
)
from order_export_tui.settings.writable import unwritable_folders
from order_export_tui.sources.base import OrderSource
from order_export_tui.transport.retry import Retrier


class NotAvailableError(Exception):
    """The settings name a connector this installation cannot build."""


def build_source(settings: Settings, retrier: Retrier) -> OrderSource:
    connector = source_connector(settings.erp.source)
    if connector is None:
        raise NotAvailableError(f"erp.source = {settings.erp.source!r} is not installed")
    return connector.build(settings, retrier)  # type: ignore[no-any-return]


def build_destination(settings: Settings) -> Destination:
    connector = destination_connector(settings.destination.app)
    if connector is None:
        raise NotAvailableError(f"destination.app = {settings.destination.app!r} is not installed")
    return connector.build(settings)  # type: ignore[no-any-return]


def startup_problems(settings: Settings) -> list[str]:
    """What keeps `run`, `daemon` and the dashboard from starting: a connector this
    installation cannot build, a secret whose variable is unset, or one too weak to use (each
    problem names its key)."""
    available = check_available(settings)
    return (
        available
        + missing_secrets(settings)
        + weak_secrets(settings)
        + unwritable_folders(settings)
    )


def check_available(settings: Settings) -> list[str]:
    """Problems, each naming its key, for connectors whose code cannot be imported."""
    problems = []
    for key, name, connector in (
        ("erp.source", settings.erp.source, source_connector(settings.erp.source)),
        (
            "destination.app",
            settings.destination.app,
            destination_connector(settings.destination.app),
        ),
    ):
        why = _unbuildable(connector) if connector is not None else "is not installed"
        if why:
            problems.append(f"{key}: {name!r} {why}")
    return problems


def _unbuildable(connector: Connector[Any]) -> str:
    try:
        load_factory(connector.factory)
    except Exception as error:  # a connector package may be broken in any way
        return f"cannot be built: {type(error).__name__}: {error}"
    return ""
