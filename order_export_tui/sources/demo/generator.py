"""Fills the demo ERP deterministically from a seed."""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from order_export_tui.private_files import make_private_dirs
from order_export_tui.sources.demo.catalogue import (
    _CAMPAIGN_SHARE,
    _CAMPAIGNS,
    _CATEGORIES,
    _COLOURS,
    _COUNTRIES,
    _COUPON_FIXED,
    _COUPON_PERCENT,
    _DAY,
    _DOMESTIC_TAX_RATE,
    _EMAIL_DOMAINS,
    _FX,
    _HOUR,
    _HOUR_WEIGHTS,
    _LANDING_PAGES,
    _LANDING_SHARE,
    _LINE_COUNTS,
    _PAYMENT_STATUSES,
    _PRODUCTS,
    _QUANTITIES,
    _SHOP_URL,
    _STYLES,
    _UNKNOWN_CURRENCY,
    _UNKNOWN_PAYMENT_STATUS,
    _WEEKDAY_WEIGHTS,
    DEFECTS,
    _Country,
)
from order_export_tui.sources.demo.helpers import (
    _apportion,
    _ascii_slug,
    _fill_pattern,
    _iso_utc,
    _numbering,
    _Picker,
)
from order_export_tui.sources.demo.schema import (
    _INDEXES,
    _INSERT_CUSTOMER,
    _INSERT_HEADER,
    _INSERT_ITEM,
    _INSERT_LINE,
    _INSERT_SHIPMENT,
    _INSERT_SHIPMENT_LINE,
    _SCHEMA,
)
from order_export_tui.sources.demo.tracking import _tracking_number, _tracking_url

Row = tuple[Any, ...]

# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


class _Batch:
    """Rows waiting for one executemany per table."""

    def __init__(self) -> None:
        self.headers: list[Row] = []
        self.lines: list[Row] = []
        self.shipments: list[Row] = []
        self.shipment_lines: list[Row] = []

    def flush(self, conn: sqlite3.Connection) -> None:
        conn.executemany(_INSERT_HEADER, self.headers)
        conn.executemany(_INSERT_LINE, self.lines)
        conn.executemany(_INSERT_SHIPMENT, self.shipments)
        conn.executemany(_INSERT_SHIPMENT_LINE, self.shipment_lines)
        for rows in (self.headers, self.lines, self.shipments, self.shipment_lines):
            rows.clear()


class _Generator:
    """Draws the whole ERP from one random.Random, in a fixed order (hence deterministic)."""

    BATCH_ORDERS = 20_000

    def __init__(self, *, orders: int, seed: int, days: int, malformed: int, now: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        # Campaigns and landing pages draw from their own stream: the rest stays as it was.
        self.marketing_rng = random.Random(f"{seed}/marketing")
        self.orders = orders
        self.days = days
        self.now = now
        self.start = now - days * _DAY
        self.day_prefixes: dict[int, str] = {}
        self.country_picker = _Picker([(i, c.weight) for i, c in enumerate(_COUNTRIES)])
        self.carrier_pickers = [_Picker(c.carriers) for c in _COUNTRIES]
        self.payment_pickers = [_Picker(c.payments) for c in _COUNTRIES]
        self.line_count_picker = _Picker(_LINE_COUNTS)
        self.quantity_picker = _Picker(_QUANTITIES)
        self.payment_status_picker = _Picker(_PAYMENT_STATUSES)
        self.order_prefix, self.order_base = _numbering("SO-", orders, 6)
        self.shipment_prefix, self.shipment_base = _numbering("SH-", 2 * orders, 6)
        self.shipment_count = 0
        self.customer_count = max(10, orders // 3)
        self.customer_prefix, self.customer_base = _numbering(
            "C-", self.customer_count + malformed, 5
        )
        # Spread evenly: order index -> defect, cycling through DEFECTS.
        self.defects = {
            (2 * k + 1) * orders // (2 * malformed): DEFECTS[k % len(DEFECTS)]
            for k in range(malformed)
        }
        # Each empty-e-mail order gets a customer of its own, numbered after the regular ones.
        email_less = sorted(i for i, defect in self.defects.items() if defect == "empty_email")
        self.email_less_customers = {
            index: self.customer_count + n for n, index in enumerate(email_less)
        }
        self.customer_country: list[int] = []
        self.customer_address: list[tuple[str, ...]] = []
        self.customer_identity: list[tuple[str, str, str, str]] = []  # no, email, first, last
        self.prices: list[list[tuple[float, float]]] = []  # per country, per item
        self.item_rows: list[Row] = []

    # ---- formatting ----

    def iso(self, timestamp: int) -> str:
        """_iso_utc without a datetime per call: the date part is cached per day."""
        day, seconds = divmod(timestamp, _DAY)
        prefix = self.day_prefixes.get(day)
        if prefix is None:
            prefix = self.day_prefixes[day] = _iso_utc(day * _DAY)[:11]
        hours, rest = divmod(seconds, _HOUR)
        minutes, secs = divmod(rest, 60)
        return f"{prefix}{hours:02d}:{minutes:02d}:{secs:02d}+00:00"

    # ---- catalogue and customers ----

    def items(self) -> list[Row]:
        rng = self.rng
        modified = self.iso(self.start - 90 * _DAY)
        eur_prices = []
        for p, (product, base) in enumerate(_PRODUCTS):
            for s, (style, factor) in enumerate(_STYLES):
                colour = _COLOURS[(p * 3 + s * 7) % len(_COLOURS)]
                price = max(4.95, round(base * factor * rng.uniform(0.9, 1.1)) - 0.05)
                eur_prices.append(round(price, 2))
                number = len(self.item_rows) + 1
                item_no = f"ITEM-{number:04d}"
                words = f"{style} {product} {colour}".split()
                slug = "-".join(filter(None, map(_ascii_slug, words)))
                self.item_rows.append(
                    (
                        item_no,
                        f"{style} {product}, {colour}",
                        round(price, 2),
                        _DOMESTIC_TAX_RATE,
                        modified,
                        f"{_SHOP_URL}/products/{slug}",
                        f"{_SHOP_URL}/media/catalog/{item_no.lower()}.jpg",
                        json.dumps([_CATEGORIES[p], f"{_CATEGORIES[p]}/{product}"]),
                    )
                )
        for country in _COUNTRIES:
            rate = _FX[country.currency]
            local = [p if rate is None else round(round(p * rate) - 0.01, 2) for p in eur_prices]
            self.prices.append([(p, round(p * (1 + country.tax_rate), 2)) for p in local])
        return self.item_rows

    def address(self, country: _Country) -> tuple[str, ...]:
        rng = self.rng
        city, region, pattern = rng.choice(country.cities)
        street = rng.choice(country.streets)
        number = rng.randint(1, 180)
        line1 = f"{number} {street}" if country.number_first else f"{street} {number}"
        line2 = _fill_pattern(rng.choice(country.line2), rng)
        return (line1, line2, city, region, _fill_pattern(pattern, rng), country.code)

    def customers(self) -> Iterator[Row]:
        rng = self.rng
        random = rng.random
        first_modified = self.start - 400 * _DAY
        for i in range(self.customer_count + len(self.email_less_customers)):
            country_index = self.country_picker.pick(random)
            country = _COUNTRIES[country_index]
            first = rng.choice(country.first_names)
            last = rng.choice(country.last_names)
            if i < self.customer_count:
                domain = _EMAIL_DOMAINS[i % len(_EMAIL_DOMAINS)]
                email = f"{_ascii_slug(first)}.{_ascii_slug(last)}{i + 1}@{domain}"
            else:  # one customer of its own per empty-e-mail defect
                email = ""
            address = self.address(country)
            self.customer_country.append(country_index)
            self.customer_address.append(address)
            self.customer_identity.append((self.customer_no(i), email, first, last))
            modified = self.iso(first_modified + rng.randrange(390 * _DAY))
            yield (self.customer_no(i), first, last, email, *address, modified)

    def customer_no(self, index: int) -> str:
        return f"{self.customer_prefix}{self.customer_base + index}"

    # ---- order times ----

    def order_times(self) -> Iterator[int]:
        """Exactly `orders` epoch seconds in [now - days, now], ascending, at shopping hours."""
        rng = self.rng
        first_day = self.start - self.start % _DAY
        days = []
        for day_start in range(first_day, self.now + 1, _DAY):
            slots = self._hour_slots(day_start)
            weekday = datetime.fromtimestamp(day_start, UTC).weekday()
            weight = sum(w for _, _, w in slots) * _WEEKDAY_WEIGHTS[weekday]
            days.append((slots, weight * rng.uniform(0.8, 1.2)))
        counts = _apportion(self.orders, [weight for _, weight in days])
        for (slots, _), count in zip(days, counts, strict=True):
            if count:
                yield from self._times_in_day(slots, count)

    def _hour_slots(self, day_start: int) -> list[tuple[int, int, float]]:
        """(start, length, weight) of each hour of the day inside [start, now]."""
        slots = []
        for hour, hour_weight in enumerate(_HOUR_WEIGHTS):
            begin = max(self.start, day_start + hour * _HOUR)
            end = min(self.now + 1, day_start + (hour + 1) * _HOUR)
            if end > begin:
                slots.append((begin, end - begin, hour_weight * (end - begin) / _HOUR))
        return slots

    def _times_in_day(self, slots: list[tuple[int, int, float]], count: int) -> list[int]:
        random = self.rng.random
        picker = _Picker([((begin, length), weight) for begin, length, weight in slots])
        times = []
        for _ in range(count):
            begin, length = picker.pick(random)
            times.append(begin + int(random() * length))
        times.sort()
        return times

    # ---- orders ----

    def write_orders(self, conn: sqlite3.Connection) -> None:
        batch = _Batch()
        for index, timestamp in enumerate(self.order_times()):
            self.add_order(index, timestamp, batch)
            if len(batch.headers) >= self.BATCH_ORDERS:
                batch.flush(conn)
        batch.flush(conn)

    def add_order(self, index: int, timestamp: int, batch: _Batch) -> None:
        rng = self.rng
        random = rng.random
        defect = self.defects.get(index)
        order_no = f"{self.order_prefix}{self.order_base + index}"
        order_date = self.iso(timestamp)

        customer = self.email_less_customers.get(index)
        if customer is None:
            customer = rng.randrange(self.customer_count)
        country_index = self.customer_country[customer]
        country = _COUNTRIES[country_index]
        bill_to = self.customer_address[customer]
        ship_to = self.address(country) if random() < 0.1 else bill_to

        items, quantities = self.draw_lines(defect)
        prices = self.prices[country_index]
        subtotal = round(sum(q * prices[i][0] for i, q in zip(items, quantities, strict=True)), 2)
        discount, coupon = self.draw_discount(subtotal)
        shipping_cost = 0.0 if subtotal >= country.free_shipping_from else country.shipping_cost
        tax = round((subtotal - discount) * country.tax_rate, 2)
        total = round(subtotal - discount + shipping_cost + tax, 2)

        payment_status = self.payment_status_picker.pick(random)
        if defect == "unknown_status":
            payment_status = _UNKNOWN_PAYMENT_STATUS
        carrier = self.carrier_pickers[country_index].pick(random)
        age = (self.now - timestamp) / (self.now - self.start)
        plans = self.plan_shipments(quantities, age, payment_status == "cancelled")

        shipped = [0] * len(items)
        modified = timestamp + rng.randrange(60, 900)  # the payment's confirmation
        last_event = timestamp
        for plan in plans:
            last_event = self.add_shipment(batch, order_no, last_event, plan, carrier, ship_to)
            shipped = [a + b for a, b in zip(shipped, plan, strict=True)]
        modified_text = self.iso(min(max(modified, last_event), self.now))

        for line_no, (item, quantity, done) in enumerate(
            zip(items, quantities, shipped, strict=True), start=1
        ):
            item_no, description = self.item_rows[item][:2]
            unit_price, unit_price_incl_tax = prices[item]
            batch.lines.append(
                (
                    order_no, line_no, item_no, description, quantity, unit_price,
                    unit_price_incl_tax, done, modified_text,
                )
            )  # fmt: skip

        currency = _UNKNOWN_CURRENCY if defect == "unknown_currency" else country.currency
        payment_method = self.payment_pickers[country_index].pick(random)
        campaign_id, landing_site = self.draw_attribution()
        batch.headers.append(
            (
                order_no, order_date, *self.customer_identity[customer], currency, carrier,
                payment_method, payment_status, subtotal, discount, shipping_cost, tax, total,
                *bill_to, *ship_to, modified_text, coupon, campaign_id, landing_site,
            )
        )  # fmt: skip

    def draw_lines(self, defect: str | None) -> tuple[list[int], list[int]]:
        if defect == "no_lines":
            return [], []
        random = self.rng.random
        count = self.line_count_picker.pick(random)
        items = self.rng.sample(range(len(self.item_rows)), count)
        quantities = [self.quantity_picker.pick(random) for _ in items]
        if defect == "negative_quantity":
            quantities[-1] = -quantities[-1]
        return items, quantities

    def draw_discount(self, subtotal: float) -> tuple[float, str]:
        """The discount and the coupon that gave it ("" for none)."""
        draw = self.rng.random()
        if draw < 0.15:
            return round(subtotal * 0.10, 2), _COUPON_PERCENT
        if draw < 0.20:
            return min(5.0, subtotal), _COUPON_FIXED
        return 0.0, ""

    def draw_attribution(self) -> tuple[str, str]:
        """(campaign id, landing site): a campaign's orders land on its page."""
        rng = self.marketing_rng
        if rng.random() < _CAMPAIGN_SHARE:
            campaign_id, slug = rng.choice(_CAMPAIGNS)
            return campaign_id, f"{_SHOP_URL}/?utm_source=newsletter&utm_campaign={slug}"
        if rng.random() < _LANDING_SHARE:
            return "", _SHOP_URL + rng.choice(_LANDING_PAGES)
        return "", ""

    def plan_shipments(self, quantities: list[int], age: float, cancelled: bool) -> list[list[int]]:
        """Per shipment, the quantity shipped of each line. Older orders are likelier shipped:
        about 55% fully shipped, 10% partially, the rest not at all."""
        rng = self.rng
        wanted = [max(q, 0) for q in quantities]
        draw = rng.random()
        p_shipped = 0.12 + 0.86 * age
        if cancelled or not any(wanted) or draw >= p_shipped + 0.14:
            return []
        partial = self.partial_plan(wanted)
        if draw >= p_shipped:
            return [partial] if partial else []
        if partial and rng.random() < 0.1:  # shipped in two parcels
            return [partial, [w - p for w, p in zip(wanted, partial, strict=True)]]
        return [wanted]

    def partial_plan(self, wanted: list[int]) -> list[int] | None:
        """Some but not all of `wanted`, or None when that is a single unit."""
        open_lines = [i for i, quantity in enumerate(wanted) if quantity > 0]
        plan = [0] * len(wanted)
        if len(open_lines) > 1:
            for i in open_lines[: self.rng.randrange(1, len(open_lines))]:
                plan[i] = wanted[i]
            return plan
        if open_lines and wanted[open_lines[0]] > 1:
            plan[open_lines[0]] = self.rng.randrange(1, wanted[open_lines[0]])
            return plan
        return None

    def add_shipment(
        self,
        batch: _Batch,
        order_no: str,
        after: int,
        plan: list[int],
        carrier: str,
        ship_to: tuple[str, ...],
    ) -> int:
        rng = self.rng
        shipped_at = min(self.now, after + rng.randrange(2 * _HOUR, 3 * _DAY))
        shipment_no = f"{self.shipment_prefix}{self.shipment_base + self.shipment_count}"
        self.shipment_count += 1
        number = _tracking_number(carrier, rng)
        url = _tracking_url(carrier, number, ship_to[5], ship_to[4])
        stamp = self.iso(shipped_at)
        batch.shipments.append((shipment_no, order_no, stamp, carrier, number, url, stamp))
        batch.shipment_lines.extend(
            (shipment_no, line_no, quantity)
            for line_no, quantity in enumerate(plan, start=1)
            if quantity
        )
        return shipped_at


def generate_demo_erp(
    path: Path,
    *,
    orders: int = 500,
    seed: int = 1,
    days: int = 30,
    malformed: int = 3,
    now: datetime | None = None,
) -> None:
    """(Re)create the demo ERP at `path`: the same arguments always give the same database.

    Orders are dated within [now - days, now]; `malformed` of them (spread evenly) each break
    interfaces.md §3 in one of the ways of DEFECTS, in turn. The new database is built under a
    temporary name and moved into place, so a reader never sees a half-built one.
    """
    if orders < 0:
        raise ValueError(f"orders must be 0 or more (got {orders})")
    if days < 1:
        raise ValueError(f"days must be 1 or more (got {days})")
    if not 0 <= malformed <= orders:
        raise ValueError(f"malformed must be from 0 to orders ({orders}) (got {malformed})")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    generator = _Generator(
        orders=orders, seed=seed, days=days, malformed=malformed, now=int(moment.timestamp())
    )
    path = Path(path)
    make_private_dirs(path.parent)
    building = path.with_name(f".{path.name}.building-{os.getpid()}")
    _remove_database_files(building)
    try:
        _build(building, generator)
        # A stale journal next to the new file would be replayed into it: remove it first.
        _remove_database_files(path, sidecars_only=True)
        os.replace(building, path)
    finally:
        _remove_database_files(building)


def _remove_database_files(path: Path, *, sidecars_only: bool = False) -> None:
    suffixes = ("-wal", "-shm", "-journal") if sidecars_only else ("", "-wal", "-shm", "-journal")
    for suffix in suffixes:
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def _build(path: Path, generator: _Generator) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Durability is pointless while building a file that is renamed into place at the end.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("BEGIN")
        _create_schema(conn)
        conn.executemany(_INSERT_ITEM, generator.items())
        conn.executemany(_INSERT_CUSTOMER, generator.customers())
        generator.write_orders(conn)
        for statement in _INDEXES.split(";"):
            if statement.strip():
                conn.execute(statement)
        info = {
            "generator": "order-export demo",
            "seed": str(generator.seed),
            "orders": str(generator.orders),
            "days": str(generator.days),
            "malformed": str(len(generator.defects)),
            "generated_at": _iso_utc(generator.now),
        }
        conn.executemany("INSERT INTO erp_info VALUES (?, ?)", info.items())
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()


def _create_schema(conn: sqlite3.Connection) -> None:
    # executescript would commit the open transaction; run the statements one by one.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def ensure_demo_erp(path: Path) -> None:
    """Create the demo ERP with the default arguments when `path` does not exist yet."""
    if not Path(path).exists():
        generate_demo_erp(Path(path))
