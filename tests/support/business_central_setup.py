"""Business Central as the tests set it up: its fake's customers, the source and engine over
it, and what the source reads in the export window."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from order_export_tui.engine.runner import ExportEngine, window_start
from order_export_tui.orders import OrderDocument
from order_export_tui.settings import Settings
from order_export_tui.sources.business_central.source import BusinessCentralSource
from order_export_tui.state import StateStore
from order_export_tui.transport.retry import Retrier, RetryPolicy
from tests.fakes.business_central import BusinessCentralFake
from tests.support.clock import FakeClock
from tests.support.engines import make_engine

UTRECHT = {"line1": "Main St 1", "city": "Utrecht", "postcode": "3511", "country": "NL"}


def engine_for(settings: Settings, clock: FakeClock | None = None) -> ExportEngine:
    return make_engine(settings, StateStore(settings.state_database_path), clock)


def source_for(settings: Settings, retries: int = 3) -> BusinessCentralSource:
    return BusinessCentralSource.from_settings(settings, Retrier(RetryPolicy(retries, 60)))


async def read_all(settings: Settings) -> dict[str, OrderDocument]:
    source = source_for(settings)
    start = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    docs: dict[str, OrderDocument] = {}
    try:
        async for chunk in source.iter_orders(start):
            for doc in chunk:
                assert doc["order_id"] not in docs, "an order was yielded twice"
                docs[doc["order_id"]] = doc
    finally:
        await source.close()
    return docs


def days_ago(days: int) -> date:
    return date.today() - timedelta(days=days)


def add_jane(fake: BusinessCentralFake) -> None:
    fake.add_customer("C-4711", "Jane Doe", "jane@example.com", address=UTRECHT)
