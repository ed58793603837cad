"""`erp.source = "sql"` from the command line: the demo behind SQL, `check --connect`, `run`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.cli import order_export


def test_demo_sql_writes_tables_and_the_two_views(tmp_path: Path) -> None:
    done = order_export(
        "demo", "--sql", "sqlite:///data/erp-demo-sql.sqlite", "--orders", "120", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    database = tmp_path / "data" / "erp-demo-sql.sqlite"
    assert f"demo ERP behind SQL at sqlite:///{database}: 120 orders" in done.stderr
    with sqlite3.connect(database) as conn:
        kinds = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE type != 'index'"))
        orders = conn.execute("SELECT count(*) FROM order_export_orders").fetchone()[0]
        lines = conn.execute("SELECT count(*) FROM order_export_order_lines").fetchone()[0]
    assert kinds["order_export_orders"] == kinds["order_export_order_lines"] == "view"
    assert kinds["demo_sales_order"] == kinds["demo_sales_order_line"] == "table"
    assert orders == 120 and lines >= 119  # one of the three malformed orders has no lines


def test_demo_sql_refuses_a_url_with_a_password_without_echoing_it(tmp_path: Path) -> None:
    done = order_export(
        "demo", "--sql", "postgresql://erp:Pa55-word@db.example.com/erp", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "--sql: must not hold a password" in done.stderr
    assert "Pa55-word" not in done.stderr + done.stdout
