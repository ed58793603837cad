"""Opening the state database where the settings put it: a SQLite file, or a PostgreSQL
server (imported only then, so the file path pays nothing for psycopg)."""

from __future__ import annotations

from order_export_tui.state.backend import StateConnection
from order_export_tui.state.connection import Database
from order_export_tui.state.location import PostgresLocation, StateLocation


def open_database(location: StateLocation, *, durable: bool = False) -> StateConnection:
    """`durable`: every commit reaches the disk before it returns (see `Database`)."""
    if isinstance(location, PostgresLocation):
        from order_export_tui.state.postgres import PostgresDatabase

        return PostgresDatabase(location, durable=durable)
    return Database(location, durable=durable)
