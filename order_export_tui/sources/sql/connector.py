"""The SQL source as a connector: `erp.source = "sql"`, its keys in [erp.sql] (interfaces.md §9).

Light on purpose: settings load it on every command; SQLAlchemy is imported only to check a URL
and to build the source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from order_export_tui.settings import Required, Secret, SourceConnector
from order_export_tui.settings.checks import ENV, Rule
from order_export_tui.sources.sql.settings import (
    DESCRIPTIONS,
    SqlSettings,
    relation_problem,
    url_problem,
)

if TYPE_CHECKING:
    from order_export_tui.settings import Settings
    from order_export_tui.sources.base import OrderSource
    from order_export_tui.transport.retry import Retrier

_RELATION = Rule(
    "must be a table or view name (letters, digits, _ and $; schema.name allowed)",
    lambda v: relation_problem(v) is None,
)
_URL = Rule(
    "must be a database URL without a password, e.g."
    " postgresql+psycopg://order_export@db.example.com:5432/erp (the password goes in the"
    " environment variable named by erp.sql.password_env)",
    lambda v: url_problem(v) is None,
)
_OPTIONAL_ENV = Rule(
    '"" or ' + ENV.expect,
    lambda v: v == "" or ENV.accepts(v),
)


def open_sql_source(settings: Settings, retrier: Retrier) -> OrderSource:
    from order_export_tui.sources.sql.source import SqlSource

    return SqlSource.from_section(
        CONNECTOR.section_of(settings),
        settings.path,
        connect_timeout=min(settings.task.request_timeout_seconds, 60),
    )


def _status_facts(section: SqlSettings, settings: Settings) -> list[tuple[str, str]]:
    if not section.url:
        return [("", "no URL")]
    from order_export_tui.sources.sql.errors import display_url
    from order_export_tui.sources.sql.settings import engine_url

    try:
        where = display_url(engine_url(section, settings.path.parent, environ={}))
    except Exception:  # a URL `check` refuses: status names no more than that
        return [("", "URL not usable")]
    return [("", where), ("views", f"{section.orders}, {section.order_lines}")]


CONNECTOR = SourceConnector(
    name="sql",
    section="erp.sql",
    settings=SqlSettings,
    factory=open_sql_source,
    rules={
        "url": _URL,
        "password_env": _OPTIONAL_ENV,
        "orders": _RELATION,
        "order_lines": _RELATION,
    },
    descriptions=DESCRIPTIONS,
    summary="two SQL views",
    table_description='An ERP behind SQL (erp.source = "sql"), see docs/source-sql.md.',
    title="SQL",
    required=(Required("url"), Required("orders"), Required("order_lines")),
    secrets=(Secret("password_env", when=lambda section: bool(section.password_env)),),
    restart_keys=(),
    status_facts=_status_facts,
    order=30,
)
