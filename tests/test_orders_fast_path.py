"""The engine's fast answers about an order agree with the rules as written.

`order_problem` answers "valid" from one inlined pass (`_plainly_valid`) and asks the rules
written one by one (`_first_problem`) only when that pass is not sure; `known_hash` lets the
engine call an order unchanged before validating it. Neither may accept what the rules refuse.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.orders import (
    OPTIONAL_LINE_URLS,
    OPTIONAL_ORDER_TEXTS,
    OPTIONAL_ORDER_URLS,
    _first_problem,
    _plainly_valid,
    _without_empty_optionals,
    content_hash,
    content_hash_and_json,
    known_hash,
    order_problem,
)
from tests.support.orders import VALID


class Text(str):
    """A str subclass: valid where the rules say isinstance(str), refused by the fast pass."""


_PATHS = [
    "order_id",
    "order_date",
    "customer",
    "customer.id",
    "customer.email",
    "customer.first_name",
    "customer.last_name",
    "currency",
    "lines",
    "lines.0",
    "lines.0.line_no",
    "lines.0.sku",
    "lines.0.name",
    "lines.0.quantity",
    "lines.0.unit_price",
    "lines.0.unit_price_incl_tax",
    "lines.0.product_url",
    "lines.0.image_url",
    "lines.0.categories",
    "subtotal",
    "discount",
    "shipping_cost",
    "tax",
    "total",
    "shipping_method",
    "payment_method",
    "tracking_number",
    "tracking_url",
    "billing_address",
    "billing_address.city",
    "shipping_address.country",
    "shipping_status",
    "payment_status",
    "coupon_code",
    "campaign_id",
    "landing_site",
    "_unreadable",
]

_ODD_VALUES = st.sampled_from(
    [
        None,
        "",
        " ",
        "x" * 2049,
        "https://shop.example.com/p",
        "HTTPS://x",
        "http://",
        "ftp://example.com",
        "https://exa mple.com",
        "jane@example.com",
        "jane@",
        "a" * 250 + "@example.com",
        "EUR",
        "eur",
        "shipped",
        "paid",
        "SO-1",
        "SO 1",
        "2026-11-27T10:21:00+00:00",
        "2026-11-27T10:21:00",
        "0001-01-01T00:30:00+01:00",
        0,
        -0.0,
        -1,
        1,
        0.5,
        2**53,
        2**53 - 1,
        -(2**53),
        float(2**60),
        float("nan"),
        float("inf"),
        True,
        False,
        [],
        ["Hats"],
        ["Hats", " "],
        ["x"] * 51,
        {},
        ("a",),
        Text("SO-1"),
        Text("https://shop.example.com/p"),
        Text("jane@example.com"),
        datetime(2026, 11, 27, 10, 21, tzinfo=UTC),
    ]
)
_VALUES = st.one_of(
    _ODD_VALUES,
    st.text(max_size=12),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _with(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`doc` with `value` at `path`; unchanged when an earlier change took the path away."""
    target: Any = doc
    for part in path.split("."):
        if isinstance(target, list):
            if not part.isdigit() or int(part) >= len(target):
                return doc
        elif not isinstance(target, dict):
            return doc
        parent, key, target = (
            target,
            int(part) if isinstance(target, list) else part,
            target[int(part)] if isinstance(target, list) else target.get(part),
        )
    parent[key] = value
    return doc


def _mutated(changes: list[tuple[str, Any]], optional_line: bool) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    if optional_line:
        doc["lines"][0].update(
            product_url="https://shop.example.com/hat",
            image_url="",
            categories=["Hats", "Hats/Wool"],
        )
        doc["landing_site"] = "https://shop.example.com/"
    for path, value in changes:
        doc = _with(doc, path, value)
    return doc


_CHANGES = st.lists(st.tuples(st.sampled_from(_PATHS), _VALUES), max_size=3)


@settings(max_examples=1500, deadline=None)
@given(changes=_CHANGES, optional_line=st.booleans())
def test_the_fast_pass_accepts_only_what_the_rules_accept(
    changes: list[tuple[str, Any]], optional_line: bool
) -> None:
    doc = _mutated(changes, optional_line)
    if _plainly_valid(doc):
        assert _first_problem(doc) is None
    assert order_problem(doc) == _first_problem(doc)


@settings(max_examples=800, deadline=None)
@given(changes=_CHANGES, optional_line=st.booleans())
def test_an_order_hashing_like_a_valid_one_is_valid(
    changes: list[tuple[str, Any]], optional_line: bool
) -> None:
    base = _mutated([], optional_line)
    doc = _mutated(changes, optional_line)
    if known_hash(doc) == content_hash(base):
        assert order_problem(doc) is None
    if order_problem(doc) is None:  # None: a str subclass, say (then it is validated)
        assert known_hash(doc) in (None, content_hash(doc))


def test_an_empty_optional_of_the_wrong_kind_never_hashes_as_a_valid_order() -> None:
    """Found by the property above: "" for the categories and [] for a URL trim away like
    absent fields, yet break the rules."""
    for path, value in [
        ("lines.0.categories", ""),
        ("lines.0.product_url", []),
        ("coupon_code", []),
        ("landing_site", []),
    ]:
        doc = _mutated([(path, value)], optional_line=False)
        assert order_problem(doc) is not None
        assert content_hash(doc) == content_hash(VALID)  # the stored values stay as they were
        assert known_hash(doc) is None


def test_the_fast_pass_knows_the_plain_valid_order() -> None:
    assert _plainly_valid(VALID)
    assert _plainly_valid(_mutated([], optional_line=True))
    assert known_hash(VALID) == content_hash(VALID)


def test_the_content_hash_keeps_its_values() -> None:
    """Existing state databases hold these hashes (computed by the code before the fast
    paths): a run must compute the same ones, for documents over hashlib's 2,048 bytes too."""
    with_optionals = _mutated([], optional_line=True)
    big = _mutated([("lines.0.name", "Hat " * 800)], optional_line=False)
    big_with_optionals = _mutated([("lines.0.name", "Hat " * 800)], optional_line=True)
    expected = [
        (VALID, "f17e0139e77998095a58addb0a6faa69"),
        (big, "6c3afb92ef6b80554ce7932163545e13"),
        (with_optionals, "f3d65e749722d99880e6fa3cc1447f73"),
        (big_with_optionals, "bb90b1ce650db4a65c4f3b36ec3ab0ce"),
    ]
    for doc, digest in expected:
        assert content_hash(doc) == digest
        assert known_hash(doc) == digest


def _says_nothing(mapping: dict[str, Any], key: str) -> bool:
    """The rule as written: an optional field present with "", [] or None."""
    return key in mapping and mapping[key] in ("", [], None)


def _has_empty_optional(doc: dict[str, Any]) -> bool:
    order_keys = (*OPTIONAL_ORDER_TEXTS, *OPTIONAL_ORDER_URLS)
    line_keys = (*OPTIONAL_LINE_URLS, "categories")
    if any(_says_nothing(doc, key) for key in order_keys):
        return True
    lines = doc.get("lines")
    return isinstance(lines, list) and any(
        isinstance(line, dict) and any(_says_nothing(line, key) for key in line_keys)
        for line in lines
    )


@settings(max_examples=800, deadline=None)
@given(changes=_CHANGES, optional_line=st.booleans())
def test_an_order_is_trimmed_exactly_when_an_optional_field_says_nothing(
    changes: list[tuple[str, Any]], optional_line: bool
) -> None:
    doc = _mutated(changes, optional_line)
    assert (_without_empty_optionals(doc) is not doc) == _has_empty_optional(doc)


@settings(max_examples=800, deadline=None)
@given(changes=_CHANGES, optional_line=st.booleans())
def test_the_hashed_json_is_the_whole_order_or_none(
    changes: list[tuple[str, Any]], optional_line: bool
) -> None:
    """A run keeps the JSON the content hash read as the order's document: it must be the
    order itself, and the hash the same as `content_hash`'s."""
    doc = _mutated(changes, optional_line)
    if order_problem(doc) is not None:
        return
    digest, data = content_hash_and_json(doc)
    assert digest == content_hash(doc)
    if _has_empty_optional(doc):
        assert data is None
    else:
        assert data is not None and orjson.loads(data) == orjson.loads(orjson.dumps(doc))
