"""The order document (interfaces.md §3): its validation and its content hash.

Every source yields this shape and the webhook receives it; nothing that breaks it is sent.
`order_problem` returns the reason an order breaks the shape, so a skip always says why.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson

OrderDocument = dict[str, Any]

SHIPPING_STATUSES = ("not_shipped", "partially_shipped", "shipped")
PAYMENT_STATUSES = (
    "pending",
    "paid",
    "partially_paid",
    "refunded",
    "partially_refunded",
    "cancelled",
    "failed",
)

# ISO 4217 active currency codes.
CURRENCY_CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905
)

ADDRESS_FIELDS = ("line1", "line2", "city", "region", "postcode", "country")
MONEY_FIELDS = ("subtotal", "discount", "shipping_cost", "tax", "total")

# An order id travels into URLs, file names, log lines and the state database: letters,
# digits and . _ / - only (the demo ERP's "SO-100234", Business Central's Code[20] numbers),
# so that " SO-1 " never becomes a second order and no control character reaches a log.
MAX_ORDER_ID_LENGTH = 64
_ORDER_ID = re.compile(r"[A-Za-z0-9._/-]{1,64}")

# The optional fields of §3: absent means "" (or [] for categories).
OPTIONAL_LINE_URLS = ("product_url", "image_url")
OPTIONAL_ORDER_TEXTS = ("coupon_code", "campaign_id")
OPTIONAL_ORDER_URLS = ("landing_site",)
MAX_OPTIONAL_TEXT_LENGTH = 2048
MAX_CATEGORIES = 50

# A source that could not read one of an order's values as its meaning (a SQL column holding
# text where an amount belongs) puts the reason here, naming where the value came from: the
# order is then skipped with that reason, as any order that breaks this shape.
UNREADABLE = "_unreadable"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_valid_email(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 254 and _EMAIL.match(value) is not None


# JSON numbers every platform reads exactly: finite and below 2**53 in magnitude, whether the
# parser made an int or (for a larger integer literal such as 2**70) a float of it.
_MAX_SAFE_INTEGER = 2**53


def _is_number(value: object) -> bool:
    # Exact type checks: JSON yields plain int and float (a bool is not a number here).
    kind = type(value)
    if kind is float:
        return math.isfinite(value) and abs(value) < _MAX_SAFE_INTEGER  # type: ignore[arg-type]
    return kind is int and -_MAX_SAFE_INTEGER < value < _MAX_SAFE_INTEGER  # type: ignore[operator]


def brief(value: object, limit: int = 40) -> str:
    """`repr(value)` cut to `limit` characters: a reason never echoes a huge input."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def order_id_problem(order_id: object, name: str = "order_id") -> str | None:
    """Why `order_id` is not an acceptable order id, or None."""
    if not isinstance(order_id, str) or not order_id:
        return f"{name} must be a non-empty string"
    if len(order_id) > MAX_ORDER_ID_LENGTH:
        return f"{name} is longer than {MAX_ORDER_ID_LENGTH} characters"
    if _ORDER_ID.fullmatch(order_id) is None:
        return (
            f"{name} {brief(order_id)} may hold only letters, digits and . _ / -"
            " (no spaces or control characters)"
        )
    return None


def _is_timestamp_with_offset(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value)
        # An aware time that cannot be expressed in UTC (year 1 at +01:00) is no time either.
        return moment.tzinfo is not None and moment.astimezone(UTC) is not None
    except (ValueError, OverflowError):
        return False


# An absolute http(s) URL: the scheme in any case, something after "://", no whitespace
# (`\s` is exactly `str.isspace`). One compiled match: a run validates millions of these.
# No IGNORECASE: it would take the long s (U+017F) for an s.
_WEB_URL = re.compile(r"[hH][tT][tT][pP][sS]?://\S+")


def _is_web_url(value: str) -> bool:
    return _WEB_URL.fullmatch(value) is not None


# The checks below return what is wrong without the field's name, which the caller puts in
# front: a valid order (nearly all of them) builds no name at all.


def _optional_text_flaw(value: object, *, url: bool) -> str | None:
    """An optional text field: absent or a string; a non-empty URL is an absolute http(s) one."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > MAX_OPTIONAL_TEXT_LENGTH:
        return f"is longer than {MAX_OPTIONAL_TEXT_LENGTH} characters"
    if url and value and not _is_web_url(value):
        return f"must be an http(s) URL (got {value[:80]!r})"
    return None


def _categories_flaw(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list):
        return "must be a list of strings"
    if len(value) > MAX_CATEGORIES:
        return f"holds more than {MAX_CATEGORIES} categories"
    for category in value:
        if not isinstance(category, str) or not category.strip():
            return "must hold non-empty strings"
        if len(category) > MAX_OPTIONAL_TEXT_LENGTH:
            return f"has a category longer than {MAX_OPTIONAL_TEXT_LENGTH} characters"
    return None


def _address_problem(name: str, address: object) -> str | None:
    if not isinstance(address, dict):
        return f"{name} must be an object"
    for field in ADDRESS_FIELDS:
        if not isinstance(address.get(field), str):
            return f"{name}.{field} must be a string"
    return None


def _line_problem(index: int, line: object) -> str | None:
    if not isinstance(line, dict):
        return f"lines[{index}] must be an object"
    if type(line.get("line_no")) is not int:
        return f"lines[{index}].line_no must be an integer"
    sku = line.get("sku")
    if not isinstance(sku, str) or not sku:
        return f"lines[{index}].sku must be a non-empty string"
    if not isinstance(line.get("name"), str):
        return f"lines[{index}].name must be a string"
    quantity = line.get("quantity")
    if not _is_number(quantity):
        return f"lines[{index}].quantity must be a number"
    if quantity <= 0:
        return f"lines[{index}].quantity must be positive (got {quantity})"
    for field in ("unit_price", "unit_price_incl_tax"):
        price = line.get(field)
        if not _is_number(price):
            return f"lines[{index}].{field} must be a number"
        if price < 0:
            return f"lines[{index}].{field} must not be negative (got {price})"
    for field in OPTIONAL_LINE_URLS:
        flaw = _optional_text_flaw(line.get(field), url=True)
        if flaw:
            return f"lines[{index}].{field} {flaw}"
    flaw = _categories_flaw(line.get("categories"))
    return f"lines[{index}].categories {flaw}" if flaw else None


def _customer_problem(customer: object) -> str | None:
    if not isinstance(customer, dict):
        return "customer must be an object"
    customer_id = customer.get("id")
    if not isinstance(customer_id, str) or not customer_id:
        return "customer.id must be a non-empty string"
    email = customer.get("email")
    if not email:
        return "customer.email is missing"
    if not is_valid_email(email):
        return f"customer.email is not a valid address ({brief(email)})"
    for field in ("first_name", "last_name"):
        if not isinstance(customer.get(field), str):
            return f"customer.{field} must be a string"
    return None


def order_problem(doc: object) -> str | None:
    """Why `doc` is not a valid order document, or None when it is."""
    if _plainly_valid(doc):
        return None
    return _first_problem(doc)


# The fast path: nearly every order a run reads is valid, and a run reads millions. One
# function with the checks inlined answers "valid" only where `_first_problem` would find no
# problem (it may answer "not sure" for more: a str subclass, an int where a float is usual);
# `_first_problem` then names the reason. tests/test_orders_fast_path.py holds the two equal.
_KNOWN_GOOD_URLS: set[str] = set()  # product and image URLs recur in every order of an item
_KNOWN_GOOD_URLS_LIMIT = 20_000
_MAX_TEXT = MAX_OPTIONAL_TEXT_LENGTH
_M = _MAX_SAFE_INTEGER
_ORDER_ID_MATCH = _ORDER_ID.fullmatch
_EMAIL_MATCH = _EMAIL.match
_WEB_URL_MATCH = _WEB_URL.fullmatch


def _good_url(value: object) -> bool:
    """An optional URL field as `_optional_text_flaw(url=True)` accepts it: absent, "" or an
    absolute http(s) URL of at most 2,048 characters."""
    if value is None or (value == "" and type(value) is str):
        return True
    if type(value) is not str:
        return False
    if value in _KNOWN_GOOD_URLS:
        return True
    if len(value) > _MAX_TEXT or _WEB_URL_MATCH(value) is None:
        return False
    if len(_KNOWN_GOOD_URLS) >= _KNOWN_GOOD_URLS_LIMIT:
        _KNOWN_GOOD_URLS.clear()
    _KNOWN_GOOD_URLS.add(value)
    return True


def _plainly_valid(doc: object) -> bool:
    if type(doc) is not dict:
        return False
    try:  # required keys by subscript (a third of .get's cost): a missing one is not plain
        return _plain_order(doc)
    except KeyError:
        return False


def _plain_order(doc: dict[str, Any]) -> bool:
    order_id = doc["order_id"]
    if type(order_id) is not str or _ORDER_ID_MATCH(order_id) is None:
        return False
    if UNREADABLE in doc or not _is_timestamp_with_offset(doc["order_date"]):
        return False
    customer = doc["customer"]
    if type(customer) is not dict:
        return False
    customer_id = customer["id"]
    email = customer["email"]
    if (
        type(customer_id) is not str
        or not customer_id
        or type(email) is not str
        or len(email) > 254
        or _EMAIL_MATCH(email) is None
        or type(customer["first_name"]) is not str
        or type(customer["last_name"]) is not str
    ):
        return False
    currency = doc["currency"]
    if type(currency) is not str or currency not in CURRENCY_CODES:
        return False
    lines = doc["lines"]
    if type(lines) is not list or not lines:
        return False
    for line in lines:
        if type(line) is not dict:
            return False
        sku = line["sku"]
        quantity = line["quantity"]
        price = line["unit_price"]
        price_incl = line["unit_price_incl_tax"]
        if (
            type(line["line_no"]) is not int
            or type(sku) is not str
            or not sku
            or type(line["name"]) is not str
            or (type(quantity) is not int and type(quantity) is not float)
            or not 0 < quantity < _M
            or (type(price) is not int and type(price) is not float)
            or not 0 <= price < _M
            or (type(price_incl) is not int and type(price_incl) is not float)
            or not 0 <= price_incl < _M
            or not _good_url(line.get("product_url"))
            or not _good_url(line.get("image_url"))
        ):
            return False
        categories = line.get("categories")
        if categories is not None:
            if type(categories) is not list or len(categories) > MAX_CATEGORIES:
                return False
            for category in categories:
                if type(category) is not str or len(category) > _MAX_TEXT or not category.strip():
                    return False
    for field in MONEY_FIELDS:
        amount = doc[field]
        if (type(amount) is not int and type(amount) is not float) or not 0 <= amount < _M:
            return False
    if (
        type(doc["shipping_method"]) is not str
        or type(doc["payment_method"]) is not str
        or type(doc["tracking_number"]) is not str
        or type(doc["tracking_url"]) is not str
    ):
        return False
    for field in ("billing_address", "shipping_address"):
        address = doc[field]
        if type(address) is not dict:
            return False
        for key in ADDRESS_FIELDS:
            if type(address[key]) is not str:
                return False
    shipping_status = doc["shipping_status"]
    payment_status = doc["payment_status"]
    if (
        type(shipping_status) is not str
        or shipping_status not in SHIPPING_STATUSES
        or type(payment_status) is not str
        or payment_status not in PAYMENT_STATUSES
    ):
        return False
    get = doc.get
    for field in OPTIONAL_ORDER_TEXTS:
        value = get(field)
        if value is not None and (type(value) is not str or len(value) > _MAX_TEXT):
            return False
    return _good_url(get("landing_site"))


def _first_problem(doc: object) -> str | None:
    """The first rule `doc` breaks, checked in order (the reference `_plainly_valid` follows)."""
    if not isinstance(doc, dict):
        return "order must be a JSON object"
    problem = order_id_problem(doc.get("order_id"))
    if problem:
        return problem
    unreadable = doc.get(UNREADABLE)
    if unreadable is not None:  # printable and bounded: a webhook could send this key too
        shown = "".join(ch for ch in str(unreadable)[:300] if ch.isprintable())
        return shown or "unreadable order"
    if not _is_timestamp_with_offset(doc.get("order_date")):
        return "order_date must be an ISO 8601 time with an offset"
    problem = _customer_problem(doc.get("customer"))
    if problem:
        return problem
    currency = doc.get("currency")
    if not isinstance(currency, str) or currency not in CURRENCY_CODES:
        return f"currency {brief(currency)} is not an ISO 4217 code"
    lines = doc.get("lines")
    if not isinstance(lines, list) or not lines:
        return "order has no lines"
    for index, line in enumerate(lines):
        problem = _line_problem(index, line)
        if problem:
            return problem
    for field in MONEY_FIELDS:
        amount = doc.get(field)
        if not _is_number(amount):
            return f"{field} must be a number"
        if amount < 0:
            return f"{field} must not be negative (got {amount})"
    for field in ("shipping_method", "payment_method", "tracking_number", "tracking_url"):
        if not isinstance(doc.get(field), str):
            return f"{field} must be a string"
    for field in ("billing_address", "shipping_address"):
        problem = _address_problem(field, doc.get(field))
        if problem:
            return problem
    shipping_status = doc.get("shipping_status")
    if shipping_status not in SHIPPING_STATUSES:
        return (
            f"shipping_status {brief(shipping_status)} is not one of {', '.join(SHIPPING_STATUSES)}"
        )
    payment_status = doc.get("payment_status")
    if payment_status not in PAYMENT_STATUSES:
        return f"payment_status {brief(payment_status)} is not one of {', '.join(PAYMENT_STATUSES)}"
    for field in OPTIONAL_ORDER_TEXTS:
        flaw = _optional_text_flaw(doc.get(field), url=False)
        if flaw:
            return f"{field} {flaw}"
    for field in OPTIONAL_ORDER_URLS:
        flaw = _optional_text_flaw(doc.get(field), url=True)
        if flaw:
            return f"{field} {flaw}"
    return None


_EMPTY = ("", [], None)
_ORDER_OPTIONALS = (*OPTIONAL_ORDER_TEXTS, *OPTIONAL_ORDER_URLS)
_LINE_OPTIONALS = (*OPTIONAL_LINE_URLS, "categories")
_SORTED = orjson.OPT_SORT_KEYS
# The same bytes for every valid order; an order holding what no valid one can (a datetime,
# a dataclass, a subclass of str or dict) cannot be hashed this way (`known_hash`).
_SORTED_PLAIN = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _has_empty(mapping: dict[str, Any], optional: tuple[str, ...]) -> bool:
    get = mapping.get
    for key in optional:  # a loop costs a third of any()'s generator here
        value = get(key)
        # `not value` first: a filled-in text is true at once, without three comparisons.
        if not value and key in mapping and value in _EMPTY:
            return True
    return False


def _without_empty(mapping: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    """`mapping` without the `optional` keys whose value is empty; itself when there are none
    (the usual case: no copy)."""
    if not _has_empty(mapping, optional):
        return mapping
    empty = [key for key in optional if key in mapping and mapping[key] in _EMPTY]
    return {key: value for key, value in mapping.items() if key not in empty}


def _any_line_has_empty(lines: list[Any]) -> bool:
    for line in lines:  # _LINE_OPTIONALS inlined: this runs for every line of every order
        if not isinstance(line, dict):
            continue
        # A filled-in value is true: only a false one (or an absent one) is compared.
        get = line.get
        url, image_url, categories = get("product_url"), get("image_url"), get("categories")
        if (
            (not url and url in _EMPTY and "product_url" in line)
            or (not image_url and image_url in _EMPTY and "image_url" in line)
            or (not categories and categories in _EMPTY and "categories" in line)
        ):
            return True
    return False


def _without_empty_optionals(doc: OrderDocument) -> OrderDocument:
    """`doc` with its optional fields left out where they say nothing ("" or []): an absent
    field and an empty one are the same order, and so are orders from before these fields."""
    trimmed = _without_empty(doc, _ORDER_OPTIONALS)
    lines = doc.get("lines")
    if isinstance(lines, list) and _any_line_has_empty(lines):
        kept = [
            _without_empty(line, _LINE_OPTIONALS) if isinstance(line, dict) else line
            for line in lines
        ]
        trimmed = {**trimmed, "lines": kept}
    return trimmed


# hashlib lets go of the GIL for every update of 2,048 bytes or more; in a run the source's
# reading thread then takes it and the engine waits up to a switch interval (5 ms) to get it
# back, per order. Smaller updates keep it: the same digest, without the wait.
_GIL_KEPT = 2047


def _sha256_prefix(data: bytes) -> str:
    if len(data) <= _GIL_KEPT:
        return hashlib.sha256(data).hexdigest()[:32]
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(data), _GIL_KEPT):
        digest.update(view[start : start + _GIL_KEPT])
    return digest.hexdigest()[:32]


def content_hash(doc: OrderDocument) -> str:
    """A fingerprint of everything a valid order says, independent of key order (and of
    whether an empty optional field is present)."""
    return _sha256_prefix(orjson.dumps(_without_empty_optionals(doc), option=_SORTED))


def content_hash_and_json(doc: OrderDocument) -> tuple[str, bytes | None]:
    """`content_hash(doc)`, with the JSON it hashed when that is all of `doc` (keys sorted;
    no empty optional field left out), else None: a run keeps that JSON as the order's
    document instead of serialising the order a second time."""
    normal = _without_empty_optionals(doc)
    data = orjson.dumps(normal, option=_SORTED)
    return _sha256_prefix(data), data if normal is doc else None


def _has_mistyped_empty(doc: OrderDocument) -> bool:
    """An empty optional of the other kind: [] for a text, "" for the categories."""
    if any(_empty_list(doc.get(key)) for key in _ORDER_OPTIONALS):
        return True
    for line in doc["lines"]:
        if isinstance(line, dict) and (
            any(_empty_list(line.get(key)) for key in OPTIONAL_LINE_URLS)
            or (isinstance(line.get("categories"), str) and not line["categories"])
        ):
            return True
    return False


def _empty_list(value: object) -> bool:
    return isinstance(value, list) and not value


def known_hash(doc: object) -> str | None:
    """`content_hash(doc)` for a document that may not be valid, or None when it holds what
    no valid order does (so it can never equal a confirmed order's hash): the engine compares
    it with what the destination confirmed before validating, because an order equal to a
    confirmed one is one that passed validation."""
    if type(doc) is not dict or type(doc.get("lines")) is not list:
        return None
    normal = _without_empty_optionals(doc)
    if normal is not doc and _has_mistyped_empty(doc):
        return None  # `categories = ""` hashes as absent, yet is no valid order
    try:
        data = orjson.dumps(normal, option=_SORTED_PLAIN)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return _sha256_prefix(data)


def line_text(line: dict[str, Any], field: str) -> str:
    """An optional text field of a line ("" when absent)."""
    value = line.get(field)
    return value if isinstance(value, str) else ""


def order_text(doc: OrderDocument, field: str) -> str:
    """An optional text field of an order ("" when absent)."""
    value = doc.get(field)
    return value if isinstance(value, str) else ""


def line_categories(line: dict[str, Any]) -> list[str]:
    value = line.get("categories")
    return [c for c in value if isinstance(c, str)] if isinstance(value, list) else []


# Carriers by the host of their track-and-trace page: the shipment's carrier, which is not
# the order's shipping method ("Express", "Standard", or a carrier other than the one used).
_CARRIER_HOSTS = (
    ("dhl.com", "DHL"),
    ("dhl.de", "DHL"),
    ("dhlparcel.nl", "DHL"),
    ("postnl.nl", "PostNL"),
    ("dpd.de", "DPD"),
    ("dpd.com", "DPD"),
    ("dpd.co.uk", "DPD"),
    ("myhermes.de", "Hermes"),
    ("evri.com", "Evri"),
    ("bpost.cloud", "bpost"),
    ("bpost.be", "bpost"),
    ("royalmail.com", "Royal Mail"),
    ("ups.com", "UPS"),
    ("usps.com", "USPS"),
    ("fedex.com", "FedEx"),
    ("laposte.fr", "Colissimo"),
    ("gls-group.eu", "GLS"),
    ("gls-group.com", "GLS"),
)


def shipment_carrier(tracking_url: str) -> str:
    """The carrier whose tracking page `tracking_url` is, or "" when it is not a known one."""
    _, _, rest = tracking_url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
    host = host.split(":", 1)[0].lower().rstrip(".")
    for domain, carrier in _CARRIER_HOSTS:
        if host == domain or host.endswith("." + domain):
            return carrier
    return ""
