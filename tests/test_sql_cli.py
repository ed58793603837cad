"""`erp.source = "sql"` from the command line: the demo behind SQL, `check --connect`, `run`."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from order_export_tui.sources.sql.demo import write_demo_sql
from tests.conftest import write_settings
from tests.support.cli import order_export
from tests.support.postgres import PASSWORD_ROLE, PostgresServer


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


def sql_settings(folder: Path, url: str, password_env: str = "", **task: Any) -> Path:
    return write_settings(
        folder,
        {
            "erp": {"source": "sql", "sql": {"url": url, "password_env": password_env}},
            "task": {"max_days_to_export": 3650, **task},
        },
    )


def test_check_connect_and_a_whole_run_on_the_demo_behind_sql(tmp_path: Path) -> None:
    url = "sqlite:///data/erp-demo-sql.sqlite"
    made = order_export("demo", "--sql", url, "--orders", "200", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    sql_settings(tmp_path, url)

    checked = order_export("check", "--connect", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    database = tmp_path / "data" / "erp-demo-sql.sqlite"
    assert f"ERP: database sqlite:///{database}: order_export_orders (200 orders)" in checked.stderr

    ran = order_export("run", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["outcome"] == "succeeded"
    assert report["counts"]["read"] == 200 and report["counts"]["skipped"] == 3
    written = (tmp_path / "exports" / "orders.jsonl").read_text().splitlines()
    keys = {
        record["key"] for line in written for record in json.loads(line)["body"].get("records", [])
    }
    assert len(keys) == 197

    status = order_export("status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr


def test_check_connect_lists_a_missing_column_and_a_run_fails_with_it(tmp_path: Path) -> None:
    database = tmp_path / "erp.sqlite"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE t (order_id TEXT, order_date TEXT)")
        conn.execute("CREATE VIEW order_export_orders AS SELECT * FROM t")
        conn.execute("CREATE VIEW order_export_order_lines AS SELECT * FROM t")
    sql_settings(tmp_path, "sqlite:///erp.sqlite")
    checked = order_export("check", "--connect", cwd=tmp_path)
    assert checked.returncode == 2
    assert "erp.sql.orders: the view order_export_orders has no columns customer_id" in (
        checked.stderr
    )
    assert "Traceback" not in checked.stderr
    ran = order_export("run", cwd=tmp_path)
    assert ran.returncode == 1
    assert "the view order_export_orders has no columns customer_id" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_check_refuses_a_url_with_a_password_naming_the_key(tmp_path: Path) -> None:
    sql_settings(tmp_path, "postgresql://erp:Pa55-word@db.example.com/erp", "ERP_SQL_PASSWORD")
    checked = order_export("check", cwd=tmp_path)
    assert checked.returncode == 2
    assert "erp.sql.url: must be a database URL without a password" in checked.stderr
    assert "Pa55-word" not in checked.stderr + checked.stdout


def test_a_run_on_postgresql_with_a_password_never_shows_it(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path
) -> None:
    url = sa.make_url(postgres_server.url(postgres_database))
    write_demo_sql(url, orders=150)
    with postgres_server.connect(postgres_database) as conn:
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {PASSWORD_ROLE}")
    sql_settings(
        tmp_path, postgres_server.url(postgres_database, user=PASSWORD_ROLE), "ERP_SQL_PASSWORD"
    )
    env = {"ERP_SQL_PASSWORD": postgres_server.password}
    checked = order_export("check", "--connect", cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    ran = order_export("run", "--json", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["counts"]["read"] > 0
    wrong = order_export("run", cwd=tmp_path, env={"ERP_SQL_PASSWORD": "Wrong-pw-1234"})
    assert wrong.returncode == 1
    assert "refused the login" in wrong.stderr
    status = order_export("status", "--json", cwd=tmp_path, env=env)
    everything = checked.stderr + ran.stdout + ran.stderr + wrong.stderr + status.stdout
    logs = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*") if p.is_file())
    state = (tmp_path / "data" / "state.sqlite").read_bytes()
    for secret in (postgres_server.password, "Wrong-pw-1234"):
        assert secret not in everything and secret not in logs
        assert secret.encode() not in state


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("mysql+pymysql://order_export@db.example.com/erp", "pymysql", "mysql"),
        ("mssql+pyodbc://order_export@db.example.com/erp?driver=ODBC+Driver+18", "pyodbc", "mssql"),
    ],
)
def test_a_driver_that_is_not_installed_names_the_extra_to_install(
    tmp_path: Path, url: str, module: str, extra: str
) -> None:
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here: this URL's driver is not missing")
    drivername = url.split("://")[0]
    said = f"the driver for {drivername} is not installed ({module}): install order-export[{extra}]"
    sql_settings(tmp_path, url)
    checked = order_export("check", "--connect", cwd=tmp_path)
    assert checked.returncode == 2
    assert f"erp.source: cannot read the ERP: {said}" in checked.stderr
    ran = order_export("run", cwd=tmp_path)
    assert ran.returncode == 1
    assert said in ran.stderr
    assert "Traceback" not in checked.stderr + ran.stderr
