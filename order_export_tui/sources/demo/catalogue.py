"""Reference data the generator draws from: countries, products, weights, defects."""

from __future__ import annotations

from typing import NamedTuple

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
# The webshop's category of each product (same order as _PRODUCTS).
_CATEGORIES = (
    "Clothing", "Clothing", "Accessories", "Accessories", "Clothing", "Footwear", "Bags",
    "Bags", "Home & Living", "Home & Living", "Outerwear", "Accessories", "Accessories",
    "Clothing", "Stationery", "Accessories", "Accessories", "Accessories", "Travel", "Sports",
)  # fmt: skip
# Where product pages and pictures live (RFC 2606: reaches nobody).
_SHOP_URL = "https://shop.example.com"
# Coupons by the discount the generator draws: 10% off, or 5 off.
_COUPON_PERCENT = "WELCOME10"
_COUPON_FIXED = "SAVE5"
# Marketing campaigns that bring customers (ids as the platform shows them), and the share of
# orders a campaign brought; other orders still land somewhere.
_CAMPAIGNS = (("a1b2c3d4e5", "autumn-sale"), ("f6e5d4c3b2", "newsletter-week-47"))
_CAMPAIGN_SHARE = 0.2
_LANDING_PAGES = ("/", "/collections/new", "/collections/sale", "/products")
_LANDING_SHARE = 0.6
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
