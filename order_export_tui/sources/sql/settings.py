"""`[erp.sql]`: the settings of the SQL source, their checks, and the engine URL made of them.

The URL never carries the password: it comes from the environment variable named by
`password_env` and is put into the `sqlalchemy.URL` object only, never into a string that a log,
an error or the state could hold.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # SQLAlchemy is imported only when a URL is read: settings load light
    from sqlalchemy.engine import URL

DEFAULT_ORDERS = "order_export_orders"
DEFAULT_ORDER_LINES = "order_export_order_lines"
DEFAULT_PASSWORD_ENV = "ERP_SQL_PASSWORD"

# A table or view name, optionally schema-qualified: quoted by SQLAlchemy where the dialect needs.
_RELATION = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}(?:\.[A-Za-z_][A-Za-z0-9_$]{0,62})?")

# psycopg 3 is the PostgreSQL driver installed with the product: a bare postgresql:// means it.
_POSTGRESQL_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


@dataclass
class SqlSettings:
    url: str = ""
    password_env: str = DEFAULT_PASSWORD_ENV
    orders: str = DEFAULT_ORDERS
    order_lines: str = DEFAULT_ORDER_LINES


DESCRIPTIONS: dict[str, str] = {
    "url": (
        "SQLAlchemy URL of the ERP database, without the password, e.g. "
        "postgresql+psycopg://order_export@db.example.com:5432/erp or sqlite:///data/erp.sqlite"
    ),
    "password_env": (
        'Name of the environment variable that holds the database password; "" when the URL '
        "needs none (SQLite, peer authentication)."
    ),
    "orders": "The table or view with one row per order (columns: see docs/source-sql.md).",
    "order_lines": "The table or view with one row per order line.",
}


def url_problem(value: object) -> str | None:
    """Why `value` cannot be `erp.sql.url`, or None. Never quotes the URL (it may hold a
    password, which is exactly one of the reasons to refuse it)."""
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return None  # required only while erp.source = "sql": the registry says so
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(value)
    except ArgumentError:
        return "is not a database URL (e.g. postgresql+psycopg://user@host:5432/database)"
    if url.password is not None:
        return (
            "must not hold a password: put it in the environment variable named by "
            "erp.sql.password_env"
        )
    try:
        _with_driver(url).get_dialect()
    except NoSuchModuleError:
        return f"names no database this version knows ({url.drivername!r})"
    return None


def relation_problem(value: object) -> str | None:
    if not isinstance(value, str) or _RELATION.fullmatch(value) is None:
        return "must be a table or view name (letters, digits, _ and $; schema.name allowed)"
    return None


def engine_url(
    section: SqlSettings, settings_folder: Path, environ: Mapping[str, str] | None = None
) -> URL:
    """The URL to connect with: the driver filled in, a relative SQLite path resolved against
    the settings file's folder, and the password from its environment variable."""
    from sqlalchemy.engine import make_url

    url = _with_driver(make_url(section.url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database).expanduser()
        if not path.is_absolute():
            url = url.set(database=str(settings_folder / path))
    environ = os.environ if environ is None else environ
    password = environ.get(section.password_env) if section.password_env else None
    if password:
        url = url.set(password=password)
    return url


def split_relation(name: str) -> tuple[str | None, str]:
    """`schema.view` -> ("schema", "view"); `view` -> (None, "view")."""
    schema, _, relation = name.rpartition(".")
    return (schema or None), relation


def _with_driver(url: URL) -> URL:
    driver = _POSTGRESQL_DRIVERS.get(url.drivername)
    return url.set(drivername=driver) if driver else url
