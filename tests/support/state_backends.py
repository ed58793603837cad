"""The state's two backends for the tests: a SQLite file, or a fresh database on the tests'
real PostgreSQL server (`tests/support/postgres.py`).

A test module that runs against both says so with `state_backend = both_state_backends`; the
conftest's `state_factory` then opens the state where `state_backend` says. The server is only
started when a test asks for PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from order_export_tui.state import PostgresLocation, StateLocation

if TYPE_CHECKING:  # imported by the conftest before pytest loads the postgres plugin
    from tests.support.postgres import PostgresServer

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def postgres_state_url(server: PostgresServer, database: str, user: str = "postgres") -> str:
    """`storage.state_database` for a database of the tests' server."""
    return f"postgresql://{user}@{server.host}:{server.port}/{database}"


@pytest.fixture(params=[SQLITE, POSTGRESQL])
def both_state_backends(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def state_location_for(request: pytest.FixtureRequest, backend: str, path: Path) -> StateLocation:
    """Where a test's state lives: `path` for SQLite, else a fresh PostgreSQL database."""
    if backend == SQLITE:
        return path
    server: PostgresServer = request.getfixturevalue("postgres_server")
    database: str = request.getfixturevalue("postgres_database")
    return PostgresLocation(postgres_state_url(server, database))


def refuse_inserts(location: StateLocation, table: str, message: str) -> None:
    """From another connection: make every insert into `table` fail with `message`."""
    if isinstance(location, Path):
        with sqlite3.connect(location) as other:
            other.execute(
                f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        return
    with psycopg.connect(location.url, autocommit=True) as other:
        other.execute(
            f"CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN RAISE EXCEPTION '{message}'; END $$"
        )
        other.execute(
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION refuse_{table}()"
        )
