"""The embedded demo ERP: an ERP-shaped SQLite database, its generator and a streaming reader.

The database looks like a small ERP's: customers, items, sales headers and lines, shipments
and their lines, each with a `modified_at`. Times are stored as UTC ISO 8601 texts
('YYYY-MM-DDTHH:MM:SS+00:00'), so comparing texts compares times and the stored order date
already is the order document's `order_date`.

`generate_demo_erp` fills it deterministically from a seed, `DemoErpSource` streams it as
order documents (interfaces.md §3), and `ship_order` / `set_payment_status` simulate ERP
activity between runs.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import os
import random
import sqlite3
import threading
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from order_export_tui.sources.base import OrderDocument, SourceError

__all__ = [
    "DemoErpSource",
    "ensure_demo_erp",
    "generate_demo_erp",
    "order_numbers",
    "set_payment_status",
    "ship_order",
]

_T = TypeVar("_T")
Row = tuple[Any, ...]

# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

_ADDRESS_COLUMNS = ("line1", "line2", "city", "region", "postcode", "country")


def _address_columns(prefix: str) -> str:
    return ",\n    ".join(f"{prefix}_{name} TEXT NOT NULL" for name in _ADDRESS_COLUMNS)


# WITHOUT ROWID keeps each table clustered on its key: the reader's keyset pages over
# sales_header and its range reads of sales_line are then sequential.
_SCHEMA = f"""
CREATE TABLE erp_info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE customer (
    customer_no TEXT PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    {_address_columns("address")},
    modified_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE item (
    item_no TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    unit_price REAL NOT NULL,
    tax_rate REAL NOT NULL,
    modified_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE sales_header (
    order_no TEXT PRIMARY KEY,
    order_date_utc TEXT NOT NULL,
    customer_no TEXT NOT NULL,
    sell_to_email TEXT NOT NULL,
    sell_to_first_name TEXT NOT NULL,
    sell_to_last_name TEXT NOT NULL,
    currency TEXT NOT NULL,
    shipping_method TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    subtotal REAL NOT NULL,
    discount REAL NOT NULL,
    shipping_cost REAL NOT NULL,
    tax REAL NOT NULL,
    total REAL NOT NULL,
    {_address_columns("bill_to")},
    {_address_columns("ship_to")},
    modified_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE sales_line (
    order_no TEXT NOT NULL,
    line_no INTEGER NOT NULL,
    item_no TEXT NOT NULL,
    description TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    unit_price_incl_tax REAL NOT NULL,
    quantity_shipped INTEGER NOT NULL DEFAULT 0,
    modified_at TEXT NOT NULL,
    PRIMARY KEY (order_no, line_no)
) WITHOUT ROWID;
CREATE TABLE shipment (
    shipment_no TEXT PRIMARY KEY,
    order_no TEXT NOT NULL,
    shipped_at TEXT NOT NULL,
    carrier TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    tracking_url TEXT NOT NULL,
    modified_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE shipment_line (
    shipment_no TEXT NOT NULL,
    line_no INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    PRIMARY KEY (shipment_no, line_no)
) WITHOUT ROWID;
"""

# Created after the bulk insert (cheaper than maintaining them row by row).
_INDEXES = """
CREATE INDEX sales_header_order_date ON sales_header (order_date_utc);
CREATE INDEX shipment_order ON shipment
    (order_no, shipped_at, shipment_no, tracking_number, tracking_url);
"""

_HEADER_COLUMNS = 28
_INSERT_CUSTOMER = f"INSERT INTO customer VALUES ({', '.join('?' * 11)})"
_INSERT_ITEM = "INSERT INTO item VALUES (?, ?, ?, ?, ?)"
_INSERT_HEADER = f"INSERT INTO sales_header VALUES ({', '.join('?' * _HEADER_COLUMNS)})"
_INSERT_LINE = "INSERT INTO sales_line VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_SHIPMENT = "INSERT INTO shipment VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_SHIPMENT_LINE = "INSERT INTO shipment_line VALUES (?, ?, ?)"

# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------

# Reserved for documentation (RFC 2606): demo orders sent to a real platform reach nobody.
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")


class _Country(NamedTuple):
    code: str
    weight: float
    currency: str
    tax_rate: float
    shipping_cost: float
    free_shipping_from: float
    carriers: tuple[tuple[str, float], ...]
    payments: tuple[tuple[str, float], ...]
    cities: tuple[tuple[str, str, str], ...]  # city, region, postcode pattern (# digit, ? letter)
    streets: tuple[str, ...]
    number_first: bool  # "12 High Street" rather than "Kerkstraat 12"
    line2: tuple[str, ...]  # occasional second address lines (# digit)
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


_COUNTRIES: tuple[_Country, ...] = (
    _Country(
        "NL", 30, "EUR", 0.21, 4.95, 50.0,
        (("PostNL", 0.6), ("DHL", 0.3), ("DPD", 0.1)),
        (("iDEAL", 0.6), ("PayPal", 0.15), ("Credit card", 0.15), ("Klarna", 0.1)),
        (
            ("Amsterdam", "", "10## ??"), ("Rotterdam", "", "30## ??"),
            ("Utrecht", "", "35## ??"), ("Den Haag", "", "25## ??"),
            ("Eindhoven", "", "56## ??"), ("Groningen", "", "97## ??"),
            ("Haarlem", "", "20## ??"), ("Leiden", "", "23## ??"),
            ("Nijmegen", "", "65## ??"), ("Zwolle", "", "80## ??"),
            ("Maastricht", "", "62## ??"), ("Breda", "", "48## ??"),
        ),
        (
            "Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenweg", "Schoolstraat",
            "Hoofdstraat", "Julianastraat", "Wilhelminalaan", "Beatrixlaan", "Oranjestraat",
            "Prinsengracht", "Lindenlaan",
        ),
        False,
        ("", "", "", "", "bis", "A", "2 hoog"),
        (
            "Jan", "Pieter", "Sanne", "Emma", "Daan", "Lotte", "Sem", "Julia", "Lucas",
            "Anouk", "Thijs", "Fleur", "Bram", "Eva", "Ruben", "Lisa",
        ),
        (
            "de Vries", "Jansen", "de Jong", "van den Berg", "Bakker", "Visser", "Smit",
            "Meijer", "de Boer", "Mulder", "Bos", "Vos", "Peters", "Hendriks", "van Dijk",
            "Dekker",
        ),
    ),
    _Country(
        "DE", 20, "EUR", 0.19, 5.95, 75.0,
        (("DHL", 0.6), ("DPD", 0.25), ("Hermes", 0.15)),
        (
            ("PayPal", 0.35), ("Klarna", 0.25), ("Credit card", 0.2), ("SOFORT", 0.1),
            ("Invoice", 0.1),
        ),
        (
            ("Berlin", "Berlin", "10###"), ("Hamburg", "Hamburg", "20###"),
            ("München", "Bayern", "80###"), ("Köln", "Nordrhein-Westfalen", "50###"),
            ("Frankfurt am Main", "Hessen", "60###"),
            ("Stuttgart", "Baden-Württemberg", "70###"),
            ("Düsseldorf", "Nordrhein-Westfalen", "40###"), ("Leipzig", "Sachsen", "04###"),
            ("Dresden", "Sachsen", "01###"), ("Hannover", "Niedersachsen", "30###"),
        ),
        (
            "Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schulstraße", "Dorfstraße",
            "Bergstraße", "Lindenstraße", "Kirchstraße", "Goethestraße", "Schillerstraße",
        ),
        False,
        ("", "", "", "", "Hinterhaus", "c/o Büro"),
        (
            "Lukas", "Leon", "Mia", "Hannah", "Felix", "Lena", "Jonas", "Anna", "Paul",
            "Laura", "Maximilian", "Sophie",
        ),
        (
            "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner",
            "Becker", "Schulz", "Hoffmann", "Koch", "Richter",
        ),
    ),
    _Country(
        "BE", 10, "EUR", 0.21, 6.95, 75.0,
        (("bpost", 0.5), ("PostNL", 0.2), ("DPD", 0.3)),
        (("Bancontact", 0.55), ("PayPal", 0.15), ("Credit card", 0.2), ("Klarna", 0.1)),
        (
            ("Brussel", "Brussels", "10#0"), ("Antwerpen", "Antwerpen", "20#0"),
            ("Gent", "Oost-Vlaanderen", "90#0"), ("Brugge", "West-Vlaanderen", "80#0"),
            ("Leuven", "Vlaams-Brabant", "30#0"), ("Liège", "Liège", "40#0"),
            ("Namur", "Namur", "50#0"), ("Mechelen", "Antwerpen", "28#0"),
        ),
        (
            "Kerkstraat", "Stationsstraat", "Rue de la Station", "Nieuwstraat", "Rue Haute",
            "Grote Markt", "Meir", "Rue du Midi",
        ),
        False,
        ("", "", "", "", "bus 2", "bte 4"),
        (
            "Noah", "Louis", "Olivia", "Emma", "Arthur", "Mila", "Jules", "Elena",
            "Victor", "Louise",
        ),
        (
            "Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes",
            "Goossens", "Wouters", "Dubois", "Lambert", "Dupont",
        ),
    ),
    _Country(
        "GB", 12, "GBP", 0.20, 8.95, 60.0,
        (("Royal Mail", 0.6), ("DPD", 0.25), ("DHL", 0.15)),
        (("Credit card", 0.5), ("PayPal", 0.3), ("Apple Pay", 0.2)),
        (
            ("London", "Greater London", "SW# #??"),
            ("Manchester", "Greater Manchester", "M## #??"),
            ("Birmingham", "West Midlands", "B## #??"), ("Leeds", "West Yorkshire", "LS# #??"),
            ("Bristol", "Bristol", "BS# #??"), ("Edinburgh", "Scotland", "EH# #??"),
            ("Glasgow", "Scotland", "G## #??"), ("Liverpool", "Merseyside", "L## #??"),
            ("Cardiff", "Wales", "CF## #??"),
        ),
        (
            "High Street", "Station Road", "Church Lane", "Victoria Road", "Park Avenue",
            "Queen Street", "Mill Lane", "King's Road",
        ),
        True,
        ("", "", "", "", "Flat #", "Flat #B"),
        (
            "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Emily",
            "Charlie", "Sophia", "Thomas", "Grace",
        ),
        (
            "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Patel", "Robinson", "Wright", "Evans",
        ),
    ),
    _Country(
        "US", 12, "USD", 0.0, 12.95, 100.0,
        (("UPS", 0.45), ("USPS", 0.4), ("FedEx", 0.15)),
        (("Credit card", 0.55), ("PayPal", 0.25), ("Apple Pay", 0.2)),
        (
            ("New York", "NY", "100##"), ("Los Angeles", "CA", "900##"),
            ("Chicago", "IL", "606##"), ("Houston", "TX", "770##"),
            ("Seattle", "WA", "981##"), ("Boston", "MA", "021##"),
            ("Denver", "CO", "802##"), ("Atlanta", "GA", "303##"),
            ("Portland", "OR", "972##"), ("Austin", "TX", "787##"),
        ),
        (
            "Main Street", "Oak Street", "Maple Avenue", "Washington Street", "Park Avenue",
            "Elm Street", "2nd Street", "Cedar Lane",
        ),
        True,
        ("", "", "", "Apt #", "Apt ##", "Suite ##0"),
        (
            "Liam", "Olivia", "Noah", "Emma", "James", "Ava", "William", "Sophia",
            "Benjamin", "Isabella", "Lucas", "Mia",
        ),
        (
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
            "Rodriguez", "Martinez", "Wilson", "Anderson",
        ),
    ),
    _Country(
        "FR", 10, "EUR", 0.20, 7.95, 75.0,
        (("Colissimo", 0.6), ("DHL", 0.2), ("DPD", 0.2)),
        (("Credit card", 0.55), ("PayPal", 0.3), ("Klarna", 0.15)),
        (
            ("Paris", "Île-de-France", "750##"), ("Lyon", "Auvergne-Rhône-Alpes", "6900#"),
            ("Marseille", "Provence-Alpes-Côte d'Azur", "130##"),
            ("Toulouse", "Occitanie", "310##"),
            ("Nice", "Provence-Alpes-Côte d'Azur", "060##"),
            ("Nantes", "Pays de la Loire", "440##"), ("Bordeaux", "Nouvelle-Aquitaine", "330##"),
            ("Lille", "Hauts-de-France", "590##"), ("Strasbourg", "Grand Est", "670##"),
        ),
        (
            "Rue de la République", "Avenue Victor Hugo", "Rue Pasteur",
            "Boulevard Saint-Michel", "Rue du Moulin", "Place de la Mairie", "Rue Jean Jaurès",
        ),
        True,
        ("", "", "", "", "Bâtiment B", "Appartement ##"),
        (
            "Gabriel", "Louise", "Raphaël", "Jade", "Léo", "Emma", "Louis", "Alice",
            "Arthur", "Chloé",
        ),
        (
            "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
            "Leroy", "Moreau", "Simon", "Laurent",
        ),
    ),
)  # fmt: skip

# Prices are set in EUR; other currencies get a rounded-to-.99 conversion.
_FX = {"EUR": None, "GBP": 0.86, "USD": 1.08}
# The webshop is Dutch: an item's own tax_rate is the domestic rate, while order lines carry
# the destination country's rate (EU one-stop-shop style).
_DOMESTIC_TAX_RATE = 0.21

_PRODUCTS = (
    ("T-Shirt", 24.95), ("Hoodie", 59.95), ("Beanie", 19.95), ("Scarf", 29.95),
    ("Socks 3-Pack", 12.95), ("Sneakers", 89.95), ("Backpack", 69.95), ("Tote Bag", 24.95),
    ("Water Bottle", 22.95), ("Coffee Mug", 14.95), ("Rain Jacket", 129.0), ("Cap", 22.95),
    ("Gloves", 27.95), ("Sweater", 74.95), ("Notebook", 12.95), ("Sunglasses", 44.95),
    ("Wallet", 39.95), ("Umbrella", 29.95), ("Travel Pillow", 24.95), ("Yoga Mat", 39.95),
)  # fmt: skip
_STYLES = (
    ("Classic", 1.0), ("Essential", 0.85), ("Recycled", 1.1), ("Premium", 1.5),
    ("Vintage", 1.2), ("Urban", 1.05), ("Trail", 1.25), ("Lightweight", 0.95),
    ("Signature", 1.35), ("Limited Edition", 1.8),
)  # fmt: skip
_COLOURS = (
    "Black", "White", "Navy", "Olive", "Sand", "Grey", "Burgundy", "Forest Green", "Ochre",
    "Sky Blue",
)  # fmt: skip

# Relative order volume per UTC hour of day: quiet nights, busy evenings.
_HOUR_WEIGHTS = (
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 4.0, 4.5, 5.0,
    5.0, 5.0, 4.5, 4.5, 5.0, 5.5, 6.0, 7.0, 7.5, 6.0, 4.0, 2.0,
)  # fmt: skip
_WEEKDAY_WEIGHTS = (1.0, 1.0, 1.0, 1.05, 1.1, 0.85, 0.95)  # Monday first

_LINE_COUNTS = ((1, 0.35), (2, 0.30), (3, 0.18), (4, 0.10), (5, 0.07))
_QUANTITIES = ((1, 0.60), (2, 0.25), (3, 0.10), (4, 0.05))
_PAYMENT_STATUSES = (
    ("paid", 0.84), ("pending", 0.08), ("refunded", 0.03), ("partially_refunded", 0.02),
    ("cancelled", 0.03),
)  # fmt: skip

# The ways a malformed order breaks interfaces.md §3, used in turn.
DEFECTS = ("empty_email", "unknown_currency", "negative_quantity", "no_lines", "unknown_status")
_UNKNOWN_CURRENCY = "XYZ"
_UNKNOWN_PAYMENT_STATUS = "lost"

_DAY = 86_400
_HOUR = 3_600

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


class _Picker:
    """Weighted choice by one random() and a bisect (much cheaper than random.choices)."""

    def __init__(self, weighted: Sequence[tuple[_T, float]]) -> None:
        self.values = [value for value, _ in weighted]
        total = sum(weight for _, weight in weighted)
        running = 0.0
        self.bounds: list[float] = []
        for _, weight in weighted:
            running += weight / total
            self.bounds.append(running)
        self.bounds[-1] = 1.0

    def pick(self, random: Callable[[], float]) -> Any:
        return self.values[bisect.bisect_right(self.bounds, random())]


def _iso_utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _utc_text(moment: datetime) -> str:
    """The stored-text form of `moment`, rounded up to the whole second stored times have."""
    utc = moment.astimezone(UTC)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return utc.isoformat()


def _now_text() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _fill_pattern(pattern: str, rng: random.Random) -> str:
    """'35## ??' -> '3521 KX': # becomes a digit, ? an upper-case letter."""
    chars = []
    for ch in pattern:
        if ch == "#":
            chars.append(str(rng.randrange(10)))
        elif ch == "?":
            chars.append(chr(65 + rng.randrange(26)))
        else:
            chars.append(ch)
    return "".join(chars)


def _numbering(prefix: str, count: int, minimum_digits: int) -> tuple[str, int]:
    """A prefix and first number giving `count` numbers of one width, so that text order
    equals numeric order (SO-100001... for 500 orders, SO-10000001... for a million)."""
    digits = max(minimum_digits, len(str(count)) + 1)
    return prefix, 10 ** (digits - 1) + 1


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder)."""
    weight_sum = sum(weights)
    shares = [total * weight / weight_sum for weight in weights]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


# --------------------------------------------------------------------------------------------
# Tracking numbers
# --------------------------------------------------------------------------------------------


def _digits(rng: random.Random, count: int) -> str:
    return str(rng.randrange(10**count)).zfill(count)


def _letters(rng: random.Random, count: int) -> str:
    return "".join(chr(65 + rng.randrange(26)) for _ in range(count))


_TRACKING: dict[str, tuple[Callable[[random.Random], str], str]] = {
    "DHL": (
        lambda r: _digits(r, 10),
        "https://www.dhl.com/global-en/home/tracking.html?tracking-id={number}",
    ),
    "PostNL": (
        lambda r: "3S" + _letters(r, 4) + _digits(r, 9),
        "https://jouw.postnl.nl/track-and-trace/{number}-{country}-{postcode}",
    ),
    "DPD": (
        lambda r: _digits(r, 14),
        "https://tracking.dpd.de/status/en_US/parcel/{number}",
    ),
    "Hermes": (
        lambda r: "H" + _digits(r, 19),
        "https://www.myhermes.de/empfangen/sendungsverfolgung/sendungsinformation#{number}",
    ),
    "bpost": (
        lambda r: "323" + _digits(r, 21),
        "https://track.bpost.cloud/btr/web/#/search?itemCode={number}",
    ),
    "Royal Mail": (
        lambda r: _letters(r, 2) + _digits(r, 9) + "GB",
        "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
    ),
    "UPS": (
        lambda r: "1Z" + _letters(r, 3) + _digits(r, 13),
        "https://www.ups.com/track?tracknum={number}",
    ),
    "USPS": (
        lambda r: "9400" + _digits(r, 18),
        "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
    ),
    "FedEx": (
        lambda r: _digits(r, 12),
        "https://www.fedex.com/fedextrack/?trknbr={number}",
    ),
    "Colissimo": (
        lambda r: "6A" + _digits(r, 11),
        "https://www.laposte.fr/outils/suivre-vos-envois?code={number}",
    ),
}


def _tracking_number(carrier: str, rng: random.Random) -> str:
    known = _TRACKING.get(carrier)
    return known[0](rng) if known else _digits(rng, 12)


def _tracking_url(carrier: str, number: str, country: str, postcode: str) -> str:
    """The carrier's track-and-trace page; "" for a carrier we know no page for."""
    known = _TRACKING.get(carrier)
    if known is None:
        return ""
    return known[1].format(number=number, country=country, postcode=postcode.replace(" ", ""))


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
                self.item_rows.append(
                    (
                        f"ITEM-{number:04d}",
                        f"{style} {product}, {colour}",
                        round(price, 2),
                        _DOMESTIC_TAX_RATE,
                        modified,
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
        discount = self.draw_discount(subtotal)
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
        batch.headers.append(
            (
                order_no, order_date, *self.customer_identity[customer], currency, carrier,
                payment_method, payment_status, subtotal, discount, shipping_cost, tax, total,
                *bill_to, *ship_to, modified_text,
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

    def draw_discount(self, subtotal: float) -> float:
        draw = self.rng.random()
        if draw < 0.15:
            return round(subtotal * 0.10, 2)
        if draw < 0.20:
            return min(5.0, subtotal)
        return 0.0

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
    path.parent.mkdir(parents=True, exist_ok=True)
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


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

_SHIPPED = "shipped"
_PARTIALLY_SHIPPED = "partially_shipped"
_NOT_SHIPPED = "not_shipped"

# The unary + keeps SQLite from using the order-date index here: walking the primary key in
# order_no order and filtering is what keyset paging needs (no sort of the whole window).
# The customer comes from the header's sell-to snapshot (as in Business Central), not from a
# join with `customer`: the join alone would cost about a fifth of the read time.
_HEADER_SQL = """
SELECT order_no, order_date_utc, customer_no, sell_to_email, sell_to_first_name,
       sell_to_last_name, currency, subtotal, discount, shipping_cost, tax, total,
       shipping_method, payment_method,
       bill_to_line1, bill_to_line2, bill_to_city, bill_to_region, bill_to_postcode,
       bill_to_country,
       ship_to_line1, ship_to_line2, ship_to_city, ship_to_region, ship_to_postcode,
       ship_to_country,
       payment_status
FROM sales_header
WHERE order_no {op} ? AND +order_date_utc >= ?
ORDER BY order_no
LIMIT ?
"""
_FIRST_HEADERS_SQL = _HEADER_SQL.format(op=">=")
_NEXT_HEADERS_SQL = _HEADER_SQL.format(op=">")
_FIRST_ORDER_SQL = "SELECT min(order_no) FROM sales_header WHERE order_date_utc >= ?"
_COUNT_SQL = "SELECT count(*) FROM sales_header WHERE order_date_utc >= ?"
_LINES_SQL = """
SELECT order_no, line_no, item_no, description, quantity, unit_price, unit_price_incl_tax,
       quantity_shipped
FROM sales_line
WHERE order_no BETWEEN ? AND ?
ORDER BY order_no, line_no
"""
# Ordered so that each order's latest shipment comes last and wins.
_SHIPMENTS_SQL = """
SELECT order_no, tracking_number, tracking_url
FROM shipment
WHERE order_no BETWEEN ? AND ?
ORDER BY order_no, shipped_at, shipment_no
"""


def _read_only_uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


class DemoErpSource:
    """Streams the demo ERP's orders as order documents (an `OrderSource`).

    One read-only SQLite connection, used from worker threads (one `asyncio.to_thread` per
    chunk) under a lock; memory holds one chunk at a time whatever the table size.
    """

    name = "demo"

    def __init__(self, path: Path, chunk_size: int = 1000) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be 1 or more (got {chunk_size})")
        self.path = Path(path)
        self.chunk_size = chunk_size
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def count_orders(self, window_start: datetime) -> int:
        since = _utc_text(window_start)
        row = await self._run(lambda conn: conn.execute(_COUNT_SQL, (since,)).fetchone())
        return int(row[0])

    async def iter_orders(self, window_start: datetime) -> AsyncIterator[list[OrderDocument]]:
        since = _utc_text(window_start)
        first = await self._run(lambda conn: conn.execute(_FIRST_ORDER_SQL, (since,)).fetchone())
        if first[0] is None:
            return
        sql, key, limit = _FIRST_HEADERS_SQL, first[0], self.chunk_size
        while True:
            chunk = await self._run(
                functools.partial(_read_chunk, sql=sql, key=key, since=since, limit=limit)
            )
            if chunk:
                yield chunk
            if len(chunk) < limit:
                return
            sql, key = _NEXT_HEADERS_SQL, chunk[-1]["order_id"]

    async def fetch_order(self, order_id: str) -> OrderDocument | None:
        """One order by its number, whatever its date."""
        chunk = await self._run(
            functools.partial(_read_chunk, sql=_FIRST_HEADERS_SQL, key=order_id, since="", limit=1)
        )
        return chunk[0] if chunk and chunk[0]["order_id"] == order_id else None

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    # ---- internals ----

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return await asyncio.to_thread(self._locked, work)
        except sqlite3.Error as exc:
            raise SourceError(f"demo ERP {self.path}: {exc}") from exc

    def _locked(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            return work(self._connection())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.path.is_file():
                raise SourceError(
                    f"demo ERP database not found: {self.path} (create it with `order-export demo`)"
                )
            self._conn = sqlite3.connect(
                _read_only_uri(self.path), uri=True, check_same_thread=False
            )
        return self._conn

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _read_chunk(
    conn: sqlite3.Connection, *, sql: str, key: str, since: str, limit: int
) -> list[OrderDocument]:
    """Up to `limit` window orders from `key` on, with their lines and latest shipment:
    three queries, whatever the chunk size."""
    headers = conn.execute(sql, (key, since, limit)).fetchall()
    if not headers:
        return []
    first, last = headers[0][0], headers[-1][0]
    docs: dict[str, OrderDocument] = {}
    lines_of: dict[str, list[dict[str, Any]]] = {}
    for (
        order_no, order_date, customer_no, email, first_name, last_name, currency,
        subtotal, discount, shipping_cost, tax, total, shipping_method, payment_method,
        b_line1, b_line2, b_city, b_region, b_postcode, b_country,
        s_line1, s_line2, s_city, s_region, s_postcode, s_country,
        payment_status,
    ) in headers:  # fmt: skip
        lines: list[dict[str, Any]] = []
        lines_of[order_no] = lines
        docs[order_no] = {
            "order_id": order_no,
            "order_date": order_date,
            "customer": {
                "id": customer_no,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
            },
            "currency": currency,
            "lines": lines,
            "subtotal": subtotal,
            "discount": discount,
            "shipping_cost": shipping_cost,
            "tax": tax,
            "total": total,
            "shipping_method": shipping_method,
            "payment_method": payment_method,
            "billing_address": {
                "line1": b_line1,
                "line2": b_line2,
                "city": b_city,
                "region": b_region,
                "postcode": b_postcode,
                "country": b_country,
            },
            "shipping_address": {
                "line1": s_line1,
                "line2": s_line2,
                "city": s_city,
                "region": s_region,
                "postcode": s_postcode,
                "country": s_country,
            },
            "shipping_status": _NOT_SHIPPED,  # settled from the lines below
            "payment_status": payment_status,
            "tracking_number": "",
            "tracking_url": "",
        }

    # The range may hold orders outside the window (their lines are skipped by the lookup).
    open_orders: set[str] = set()
    started_orders: set[str] = set()
    for order_no, line_no, sku, name, quantity, unit_price, incl_tax, shipped in conn.execute(
        _LINES_SQL, (first, last)
    ):
        lines = lines_of.get(order_no)
        if lines is None:
            continue
        lines.append(
            {
                "line_no": line_no,
                "sku": sku,
                "name": name,
                "quantity": quantity,
                "unit_price": unit_price,
                "unit_price_incl_tax": incl_tax,
            }
        )
        if shipped < quantity:
            open_orders.add(order_no)
        if shipped > 0:
            started_orders.add(order_no)
    for order_no, lines in lines_of.items():
        if not lines:
            continue
        if order_no not in open_orders:
            docs[order_no]["shipping_status"] = _SHIPPED
        elif order_no in started_orders:
            docs[order_no]["shipping_status"] = _PARTIALLY_SHIPPED

    for order_no, tracking_number, tracking_url in conn.execute(_SHIPMENTS_SQL, (first, last)):
        doc = docs.get(order_no)
        if doc is not None:
            doc["tracking_number"] = tracking_number
            doc["tracking_url"] = tracking_url
    return list(docs.values())


# --------------------------------------------------------------------------------------------
# Simulated ERP activity
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _write_transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-write connection (never creating the file) in one IMMEDIATE transaction."""
    uri = f"{Path(path).resolve().as_uri()}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def ship_order(
    path: Path,
    order_no: str,
    *,
    carrier: str = "DHL",
    tracking_number: str | None = None,
    partial: bool = False,
) -> None:
    """Record a shipment of everything still open on `order_no` (with `partial`, only part
    of it: the first open line when several are open, else half the open quantity).

    Without `tracking_number` a carrier-style one is made up (deterministic per shipment).
    Raises LookupError for an unknown order, ValueError when nothing (or, with `partial`,
    only one unit) is left to ship.
    """
    with _write_transaction(path) as conn:
        target = conn.execute(
            "SELECT ship_to_country, ship_to_postcode FROM sales_header WHERE order_no = ?",
            (order_no,),
        ).fetchone()
        if target is None:
            raise LookupError(f"unknown order {order_no!r}")
        open_lines: list[tuple[int, int]] = conn.execute(
            "SELECT line_no, quantity - quantity_shipped FROM sales_line"
            " WHERE order_no = ? AND quantity > quantity_shipped ORDER BY line_no",
            (order_no,),
        ).fetchall()
        if not open_lines:
            raise ValueError(f"order {order_no!r} has nothing left to ship")
        if partial:
            open_lines = _part_of(open_lines, order_no)
        shipment_no = _next_shipment_no(conn)
        rng = random.Random(f"{order_no}/{shipment_no}")
        number = tracking_number or _tracking_number(carrier, rng)
        url = _tracking_url(carrier, number, target[0], target[1])
        stamp = _now_text()
        conn.execute(
            "INSERT INTO shipment VALUES (?, ?, ?, ?, ?, ?, ?)",
            (shipment_no, order_no, stamp, carrier, number, url, stamp),
        )
        conn.executemany(
            "INSERT INTO shipment_line VALUES (?, ?, ?)",
            [(shipment_no, line_no, quantity) for line_no, quantity in open_lines],
        )
        conn.executemany(
            "UPDATE sales_line SET quantity_shipped = quantity_shipped + ?, modified_at = ?"
            " WHERE order_no = ? AND line_no = ?",
            [(quantity, stamp, order_no, line_no) for line_no, quantity in open_lines],
        )
        conn.execute(
            "UPDATE sales_header SET modified_at = ? WHERE order_no = ?", (stamp, order_no)
        )


def _part_of(open_lines: list[tuple[int, int]], order_no: str) -> list[tuple[int, int]]:
    if len(open_lines) > 1:
        return open_lines[:1]
    line_no, quantity = open_lines[0]
    if quantity < 2:
        raise ValueError(f"order {order_no!r} has a single unit left: it cannot ship in part")
    return [(line_no, quantity // 2)]


def _next_shipment_no(conn: sqlite3.Connection) -> str:
    """One more than the highest shipment number, keeping its width."""
    last = conn.execute("SELECT max(shipment_no) FROM shipment").fetchone()[0]
    if last is None:
        return "SH-100001"
    prefix, _, digits = last.rpartition("-")
    return f"{prefix}-{int(digits) + 1:0{len(digits)}d}"


def set_payment_status(path: Path, order_no: str, status: str) -> None:
    """Set an order's payment status as the ERP would (any text: a bogus one makes the order
    malformed). Raises LookupError for an unknown order."""
    with _write_transaction(path) as conn:
        updated = conn.execute(
            "UPDATE sales_header SET payment_status = ?, modified_at = ? WHERE order_no = ?",
            (status, _now_text(), order_no),
        ).rowcount
        if updated == 0:
            raise LookupError(f"unknown order {order_no!r}")


def order_numbers(path: Path) -> list[str]:
    """Every order number, ascending (reads them all: meant for small databases)."""
    conn = sqlite3.connect(_read_only_uri(Path(path)), uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT order_no FROM sales_header ORDER BY 1")]
    finally:
        conn.close()
