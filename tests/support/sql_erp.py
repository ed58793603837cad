"""An ERP behind SQL for the tests: two tables of chosen column types behind the two views of
interfaces.md §9, on SQLite or on the test PostgreSQL server, and rows to put in them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from order_export_tui.sources.sql.columns import (
    LINE_COLUMNS,
    MONEY_COLUMNS,
    OPTIONAL_LINE_COLUMNS,
    OPTIONAL_ORDER_COLUMNS,
    ORDER_COLUMNS,
)
from order_export_tui.sources.sql.settings import DEFAULT_ORDER_LINES, DEFAULT_ORDERS

BACKENDS = ("sqlite", "postgresql")


@dataclass
class SqlErp:
    """A database the test owns: `url` (no password) and an engine to set it up with."""

    backend: str
    url: str
    engine: sa.Engine
    orders_view: str = DEFAULT_ORDERS
    lines_view: str = DEFAULT_ORDER_LINES
    settings_folder: Path = field(default_factory=Path.cwd)

    def execute(self, sql: str, params: Any = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params or {})

    def create(
        self,
        order_types: dict[str, str] | None = None,
        line_types: dict[str, str] | None = None,
        *,
        leave_out: tuple[str, ...] = (),
    ) -> None:
        """Tables `erp_orders` / `erp_lines` with these column types (the rest: text, numeric
        amounts, a timestamp with time zone) and the two views over them, less `leave_out`."""
        postgres = self.backend == "postgresql"
        order_columns = {
            name: ("NUMERIC" if name in MONEY_COLUMNS else "TEXT")
            for name in (*ORDER_COLUMNS, *OPTIONAL_ORDER_COLUMNS)
        }
        order_columns["order_date"] = "TIMESTAMPTZ" if postgres else "TEXT"
        order_columns.update(order_types or {})
        line_columns = {name: "TEXT" for name in (*LINE_COLUMNS, *OPTIONAL_LINE_COLUMNS)}
        line_columns.update(line_no="INTEGER", quantity="NUMERIC")
        line_columns.update(unit_price="NUMERIC", unit_price_incl_tax="NUMERIC")
        line_columns.update(line_types or {})
        self._table("erp_orders", order_columns)
        self._table("erp_lines", line_columns)
        for view, table, columns in (
            (self.orders_view, "erp_orders", order_columns),
            (self.lines_view, "erp_lines", line_columns),
        ):
            shown = ", ".join(name for name in columns if name not in leave_out)
            self.execute(f"DROP VIEW IF EXISTS {view}")
            self.execute(f"CREATE VIEW {view} AS SELECT {shown} FROM {table}")
        if postgres:
            self.execute("CREATE INDEX erp_lines_order ON erp_lines (order_id, line_no)")

    def _table(self, name: str, columns: dict[str, str]) -> None:
        body = ", ".join(f"{column} {kind}" for column, kind in columns.items())
        self.execute(f"DROP TABLE IF EXISTS {name}{' CASCADE' if self.postgres else ''}")
        self.execute(f"CREATE TABLE {name} ({body})")

    @property
    def postgres(self) -> bool:
        return self.backend == "postgresql"

    def add_order(self, **values: Any) -> None:
        self._insert("erp_orders", values)

    def add_line(self, **values: Any) -> None:
        self._insert("erp_lines", values)

    def add_orders(self, rows: list[dict[str, Any]], lines: list[dict[str, Any]]) -> None:
        if rows:
            self._insert_many("erp_orders", rows)
        if lines:
            self._insert_many("erp_lines", lines)

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        self._insert_many(table, [values])

    def _insert_many(self, table: str, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        marks = ", ".join(f":{name}" for name in columns)
        self.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def moment(self, value: datetime) -> Any:
        """An order date as this backend's table holds it."""
        return value if self.postgres else value.isoformat()


def order_row(order_id: str, when: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid order's row (its date as an aware datetime; `SqlErp.moment` for SQLite)."""
    row: dict[str, Any] = {
        "order_id": order_id,
        "order_date": when or datetime(2026, 11, 27, 10, 21, tzinfo=UTC),
        "customer_id": "C-4711",
        "email": "jane@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "currency": "EUR",
        "subtotal": 20,
        "discount": 0,
        "shipping_cost": 5,
        "tax": 4.2,
        "total": 29.2,
        "shipping_method": "DHL",
        "payment_method": "iDEAL",
        "shipping_status": "not_shipped",
        "payment_status": "pending",
        "tracking_number": "",
        "tracking_url": "",
    }
    for prefix in ("billing", "shipping"):
        row.update(
            {
                f"{prefix}_line1": "Main St 1",
                f"{prefix}_line2": "",
                f"{prefix}_city": "Utrecht",
                f"{prefix}_region": "",
                f"{prefix}_postcode": "3511",
                f"{prefix}_country": "NL",
            }
        )
    row.update(overrides)
    return row


def line_row(order_id: str, line_no: int = 1, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "order_id": order_id,
        "line_no": line_no,
        "sku": f"ITEM-{line_no:03d}",
        "name": "Hat",
        "quantity": 2,
        "unit_price": 10,
        "unit_price_incl_tax": 12.1,
    }
    row.update(overrides)
    return row


@pytest.fixture(params=BACKENDS)
def sql_erp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlErp]:
    """An empty database on each backend (PostgreSQL skips where the machine has none)."""
    if request.param == "sqlite":
        url = "sqlite:///erp.sqlite"
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.sqlite'}")
    else:
        server = request.getfixturevalue("postgres_server")
        database = request.getfixturevalue("postgres_database")
        url = server.url(database)
        engine = sa.create_engine(url)
    try:
        yield SqlErp(request.param, url, engine, settings_folder=tmp_path)
    finally:
        engine.dispose()
