"""The embedded demo ERP: generation, the order documents it yields, and simulated activity."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from order_export_tui.orders import order_problem, shipment_carrier
from order_export_tui.sources.base import SourceError
from order_export_tui.sources.demo import (
    DEFECTS,
    DemoErpSource,
    ensure_demo_erp,
    order_numbers,
    set_payment_status,
    ship_order,
)
from tests.support.demo_erp import DAYS, EPOCH, MALFORMED, NOW, ORDERS, generate, read_all

ORDER_KEYS = [
    "order_id", "order_date", "customer", "currency", "lines",
    "subtotal", "discount", "shipping_cost", "tax", "total",
    "shipping_method", "payment_method", "billing_address", "shipping_address",
    "shipping_status", "payment_status", "tracking_number", "tracking_url",
]  # fmt: skip
CUSTOMER_KEYS = ["id", "email", "first_name", "last_name"]
LINE_KEYS = ["line_no", "sku", "name", "quantity", "unit_price", "unit_price_incl_tax"]
OPTIONAL_ORDER_KEYS = {"coupon_code", "campaign_id", "landing_site"}
OPTIONAL_LINE_KEYS = {"product_url", "image_url", "categories"}
ADDRESS_KEYS = ["line1", "line2", "city", "region", "postcode", "country"]
MONEY_KEYS = ["subtotal", "discount", "shipping_cost", "tax", "total"]
SHIPPING_STATUSES = {"not_shipped", "partially_shipped", "shipped"}
PAYMENT_STATUSES = {
    "pending", "paid", "partially_paid", "refunded", "partially_refunded", "cancelled", "failed",
}  # fmt: skip
CURRENCY_OF_COUNTRY = {"NL": "EUR", "DE": "EUR", "BE": "EUR", "FR": "EUR", "GB": "GBP", "US": "USD"}

Doc = dict[str, Any]


def defects(doc: Doc) -> list[str]:
    """How `doc` breaks interfaces.md §3, in the demo generator's own terms."""
    found = []
    if not doc["customer"]["email"]:
        found.append("empty_email")
    if doc["currency"] not in {"EUR", "GBP", "USD"}:
        found.append("unknown_currency")
    if any(line["quantity"] < 0 for line in doc["lines"]):
        found.append("negative_quantity")
    if not doc["lines"]:
        found.append("no_lines")
    if (
        doc["payment_status"] not in PAYMENT_STATUSES
        or doc["shipping_status"] not in SHIPPING_STATUSES
    ):
        found.append("unknown_status")
    return found


def by_id(docs: list[Doc]) -> dict[str, Doc]:
    return {doc["order_id"]: doc for doc in docs}


@pytest.fixture(scope="module")
def erp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("erp") / "erp-demo.sqlite"
    generate(path)
    return path


@pytest.fixture(scope="module")
def docs(erp: Path) -> list[Doc]:
    return asyncio.run(read_all(erp))


@pytest.fixture
def small_erp(tmp_path: Path) -> Path:
    """A fresh database a test may change."""
    path = tmp_path / "erp.sqlite"
    generate(path, orders=80, malformed=0)
    return path


# ---- the document shape ----


def test_documents_have_exactly_the_documented_keys_and_types(docs: list[Doc]) -> None:
    assert len(docs) == ORDERS
    for doc in docs:
        assert [key for key in doc if key not in OPTIONAL_ORDER_KEYS] == ORDER_KEYS
        assert all(isinstance(doc[key], str) and doc[key] for key in OPTIONAL_ORDER_KEYS & {*doc})
        assert list(doc["customer"]) == CUSTOMER_KEYS
        assert list(doc["billing_address"]) == ADDRESS_KEYS
        assert list(doc["shipping_address"]) == ADDRESS_KEYS
        assert isinstance(doc["order_id"], str)
        assert datetime.fromisoformat(doc["order_date"]).utcoffset() == timedelta(0)
        assert all(type(doc[key]) is float for key in MONEY_KEYS)
        for line in doc["lines"]:
            assert [key for key in line if key not in OPTIONAL_LINE_KEYS] == LINE_KEYS
            assert type(line["line_no"]) is int
            assert type(line["quantity"]) is int
            assert type(line["unit_price"]) is float
            assert type(line["unit_price_incl_tax"]) is float


def test_the_optional_fields_are_generated_as_a_webstore_would_have_them(
    docs: list[Doc],
) -> None:
    valid = [doc for doc in docs if order_problem(doc) is None]
    coupons = [doc for doc in valid if doc.get("coupon_code")]
    assert coupons and all(doc["discount"] > 0 for doc in coupons)
    assert all(doc.get("coupon_code") for doc in valid if doc["discount"] > 0)
    campaigns = [doc for doc in valid if doc.get("campaign_id")]
    assert 0 < len(campaigns) < len(valid)
    assert all("utm_campaign=" in doc["landing_site"] for doc in campaigns)
    assert any(doc.get("landing_site") and not doc.get("campaign_id") for doc in valid)
    for line in (line for doc in valid for line in doc["lines"]):
        assert line["product_url"].startswith("https://shop.example.com/products/")
        assert line["image_url"].endswith(".jpg")
        assert line["categories"] and all(isinstance(c, str) for c in line["categories"])


def test_every_tracking_url_is_the_page_of_a_carrier_that_matches_its_shipment(
    small_erp: Path, docs: list[Doc]
) -> None:
    shipped = [doc for doc in docs if doc["tracking_url"]]
    assert shipped
    for doc in shipped:
        assert shipment_carrier(doc["tracking_url"]) == doc["shipping_method"]
    order_id = next(
        doc["order_id"] for doc in asyncio.run(read_all(small_erp))
        if doc["shipping_status"] == "not_shipped" and doc["shipping_method"] != "DHL"
    )  # fmt: skip
    ship_order(small_erp, order_id)  # no carrier named: the order's own
    shipped_now = by_id(asyncio.run(read_all(small_erp)))[order_id]
    assert shipment_carrier(shipped_now["tracking_url"]) == shipped_now["shipping_method"]
    ship_order_id = next(
        doc["order_id"] for doc in asyncio.run(read_all(small_erp))
        if doc["shipping_status"] == "not_shipped"
    )  # fmt: skip
    ship_order(small_erp, ship_order_id, carrier="UPS")
    assert (
        shipment_carrier(by_id(asyncio.run(read_all(small_erp)))[ship_order_id]["tracking_url"])
        == "UPS"
    )


def test_documents_come_in_order_number_order(erp: Path, docs: list[Doc]) -> None:
    ids = [doc["order_id"] for doc in docs]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert order_numbers(erp) == ids


# ---- generation ----


async def test_same_seed_gives_identical_documents(tmp_path: Path, docs: list[Doc]) -> None:
    generate(tmp_path / "again.sqlite")
    assert await read_all(tmp_path / "again.sqlite") == docs


async def test_another_seed_gives_other_documents(tmp_path: Path, docs: list[Doc]) -> None:
    generate(tmp_path / "other.sqlite", seed=12)
    other = await read_all(tmp_path / "other.sqlite")
    assert len(other) == len(docs)
    assert other != docs
    assert [d["customer"] for d in other] != [d["customer"] for d in docs]


def test_orders_fall_within_the_last_days_spread_over_them(docs: list[Doc]) -> None:
    dates = [datetime.fromisoformat(doc["order_date"]) for doc in docs]
    assert all(NOW - timedelta(days=DAYS) <= date <= NOW for date in dates)
    assert len({date.date() for date in dates}) >= DAYS - 1
    assert dates == sorted(dates)  # order numbers are given out chronologically
    busy_hours = sum(1 for date in dates if 8 <= date.hour <= 22)
    assert busy_hours > 0.7 * len(dates)


def test_money_adds_up_on_every_well_formed_order(docs: list[Doc]) -> None:
    well_formed = [doc for doc in docs if not defects(doc)]
    assert len(well_formed) == ORDERS - MALFORMED
    for doc in well_formed:
        subtotal = sum(line["quantity"] * line["unit_price"] for line in doc["lines"])
        assert doc["subtotal"] == pytest.approx(subtotal, abs=0.01)
        expected_total = doc["subtotal"] - doc["discount"] + doc["shipping_cost"] + doc["tax"]
        assert doc["total"] == pytest.approx(expected_total, abs=0.01)
        assert 0 <= doc["discount"] <= doc["subtotal"]
        assert doc["tax"] >= 0 and doc["shipping_cost"] >= 0
        assert all(round(doc[key], 2) == doc[key] for key in MONEY_KEYS)
        assert 1 <= len(doc["lines"]) <= 5
        for line in doc["lines"]:
            assert 1 <= line["quantity"] <= 4
            assert line["unit_price_incl_tax"] >= line["unit_price"] > 0


def test_currency_follows_the_billing_country(docs: list[Doc]) -> None:
    well_formed = [doc for doc in docs if not defects(doc)]
    for doc in well_formed:
        assert doc["currency"] == CURRENCY_OF_COUNTRY[doc["billing_address"]["country"]]
    assert {doc["currency"] for doc in well_formed} == {"EUR", "GBP", "USD"}
    assert len({doc["billing_address"]["country"] for doc in well_formed}) >= 5


def test_exactly_the_malformed_orders_break_the_shape(docs: list[Doc]) -> None:
    broken = {doc["order_id"]: defects(doc) for doc in docs if defects(doc)}
    assert len(broken) == MALFORMED
    assert all(len(found) == 1 for found in broken.values())
    assert sorted(found[0] for found in broken.values()) == sorted(DEFECTS)
    # spread over the whole range rather than bunched together
    positions = [i for i, doc in enumerate(docs) if doc["order_id"] in broken]
    assert positions[0] < ORDERS // 4 and positions[-1] > 3 * ORDERS // 4


async def test_malformed_count_follows_the_argument(tmp_path: Path) -> None:
    generate(tmp_path / "none.sqlite", orders=50, malformed=0)
    assert not any(defects(doc) for doc in await read_all(tmp_path / "none.sqlite"))

    generate(tmp_path / "seven.sqlite", orders=50, malformed=7)
    found = Counter(
        kind for doc in await read_all(tmp_path / "seven.sqlite") for kind in defects(doc)
    )
    assert found == Counter(DEFECTS) + Counter(DEFECTS[:2])


def test_shipping_states_all_occur_with_tracking_on_shipped_orders(docs: list[Doc]) -> None:
    statuses = Counter(doc["shipping_status"] for doc in docs)
    assert set(statuses) == SHIPPING_STATUSES
    assert 0.35 < statuses["shipped"] / len(docs) < 0.75
    assert statuses["partially_shipped"] / len(docs) > 0.03
    for doc in docs:
        if defects(doc):  # a negative quantity, say, counts as shipped without a shipment
            continue
        if doc["shipping_status"] == "not_shipped":
            assert doc["tracking_number"] == doc["tracking_url"] == ""
        else:
            assert doc["tracking_number"]
            assert doc["tracking_url"].startswith("https://")


def test_payment_statuses_are_mostly_paid(docs: list[Doc]) -> None:
    statuses = Counter(doc["payment_status"] for doc in docs)
    assert statuses.most_common(1)[0][0] == "paid"
    assert statuses["pending"] > 0


def test_generation_rejects_impossible_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="malformed"):
        generate(tmp_path / "x.sqlite", orders=3, malformed=4)
    with pytest.raises(ValueError, match="days"):
        generate(tmp_path / "x.sqlite", days=0)
    assert not (tmp_path / "x.sqlite").exists()


async def test_generation_replaces_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "erp.sqlite"
    path.write_bytes(b"not a database")
    Path(f"{path}-wal").write_bytes(b"stale")
    Path(f"{path}-shm").write_bytes(b"stale")
    generate(path, orders=20, malformed=0)
    assert len(await read_all(path)) == 20
    assert not Path(f"{path}-wal").exists()
    assert not Path(f"{path}-shm").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erp.sqlite"]


async def test_ensure_creates_the_database_only_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "erp-demo.sqlite"
    ensure_demo_erp(path)
    assert len(await read_all(path)) == 500
    stamp = path.stat().st_mtime_ns
    ensure_demo_erp(path)
    assert path.stat().st_mtime_ns == stamp


# ---- reading ----


async def test_window_includes_its_first_second_and_excludes_the_one_before(
    erp: Path, docs: list[Doc]
) -> None:
    order = docs[len(docs) // 2]
    start = datetime.fromisoformat(order["order_date"])

    included = by_id(await read_all(erp, start))
    assert order["order_id"] in included
    assert all(datetime.fromisoformat(d["order_date"]) >= start for d in included.values())
    assert order["order_id"] not in by_id(await read_all(erp, start + timedelta(seconds=1)))
    assert order["order_id"] not in by_id(await read_all(erp, start + timedelta(milliseconds=1)))

    elsewhere = start.astimezone(timezone(timedelta(hours=-5)))
    assert by_id(await read_all(erp, elsewhere)) == included


async def test_count_matches_the_documents_yielded(erp: Path) -> None:
    source = DemoErpSource(erp)
    try:
        for start in (EPOCH, NOW - timedelta(days=5), NOW - timedelta(hours=3), NOW + timedelta(1)):
            assert await source.count_orders(start) == len(await read_all(erp, start))
        assert await source.count_orders(NOW + timedelta(days=1)) == 0
    finally:
        await source.close()


async def test_reads_stream_in_chunks_of_chunk_size(erp: Path, docs: list[Doc]) -> None:
    source = DemoErpSource(erp, chunk_size=50)
    sizes = [len(chunk) async for chunk in source.iter_orders(EPOCH)]
    assert sizes == [50, 50, 50, 50, 40]

    source = DemoErpSource(erp, chunk_size=60)
    chunks = [chunk async for chunk in source.iter_orders(EPOCH)]
    assert [len(chunk) for chunk in chunks] == [60, 60, 60, 60]  # no empty trailing chunk
    assert [doc for chunk in chunks for doc in chunk] == docs
    await source.close()


async def test_a_missing_database_is_a_source_error(tmp_path: Path) -> None:
    source = DemoErpSource(tmp_path / "missing.sqlite")
    with pytest.raises(SourceError, match=r"missing\.sqlite"):
        await source.count_orders(EPOCH)
    with pytest.raises(SourceError):
        await read_all(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


# ---- simulated ERP activity ----


def units(doc: Doc) -> int:
    return sum(line["quantity"] for line in doc["lines"])


async def test_ship_order_ships_the_whole_order_with_tracking(small_erp: Path) -> None:
    order = next(d for d in await read_all(small_erp) if d["shipping_status"] == "not_shipped")
    ship_order(small_erp, order["order_id"], carrier="UPS", tracking_number="1ZTEST123")

    shipped = by_id(await read_all(small_erp))[order["order_id"]]
    assert shipped["shipping_status"] == "shipped"
    assert shipped["tracking_number"] == "1ZTEST123"
    assert shipped["tracking_url"] == "https://www.ups.com/track?tracknum=1ZTEST123"
    with pytest.raises(ValueError, match="nothing left"):
        ship_order(small_erp, order["order_id"])


async def test_partial_shipment_then_the_rest(small_erp: Path) -> None:
    order = next(
        d
        for d in await read_all(small_erp)
        if d["shipping_status"] == "not_shipped" and units(d) >= 2
    )
    ship_order(small_erp, order["order_id"], partial=True)
    partial = by_id(await read_all(small_erp))[order["order_id"]]
    assert partial["shipping_status"] == "partially_shipped"
    assert partial["tracking_number"] and partial["tracking_url"].startswith("https://")

    ship_order(small_erp, order["order_id"], carrier="DHL", tracking_number="JD0002")
    done = by_id(await read_all(small_erp))[order["order_id"]]
    assert done["shipping_status"] == "shipped"
    assert done["tracking_number"] == "JD0002"  # the latest shipment's


async def test_ship_order_bumps_modified_at_and_records_the_shipment(small_erp: Path) -> None:
    order = next(d for d in await read_all(small_erp) if d["shipping_status"] == "not_shipped")
    before = _modified_at(small_erp, order["order_id"])
    ship_order(small_erp, order["order_id"])
    assert _modified_at(small_erp, order["order_id"]) > before
    with sqlite3.connect(small_erp) as conn:
        shipped_units = conn.execute(
            "SELECT sum(sl.quantity) FROM shipment AS s"
            " JOIN shipment_line AS sl ON sl.shipment_no = s.shipment_no WHERE s.order_no = ?",
            (order["order_id"],),
        ).fetchone()[0]
    assert shipped_units == units(order)


async def test_set_payment_status(small_erp: Path) -> None:
    order = (await read_all(small_erp))[3]
    before = _modified_at(small_erp, order["order_id"])
    set_payment_status(small_erp, order["order_id"], "refunded")
    assert by_id(await read_all(small_erp))[order["order_id"]]["payment_status"] == "refunded"
    assert _modified_at(small_erp, order["order_id"]) > before


def test_unknown_orders_are_refused(small_erp: Path) -> None:
    with pytest.raises(LookupError):
        ship_order(small_erp, "SO-000000")
    with pytest.raises(LookupError):
        set_payment_status(small_erp, "SO-000000", "paid")


def _modified_at(path: Path, order_no: str) -> str:
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT modified_at FROM sales_header WHERE order_no = ?", (order_no,)
        ).fetchone()
    return str(row[0])
