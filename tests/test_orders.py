"""The order document's validation: every rejection says why."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.orders import content_hash, order_problem, shipment_carrier
from tests.support.orders import VALID, changed


def test_the_documented_example_is_valid() -> None:
    assert order_problem(VALID) is None


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("customer.email", "", "customer.email is missing"),
        ("customer.email", KeyError, "customer.email is missing"),
        ("customer.email", "jane at example", "customer.email is not a valid address"),
        ("currency", "XYZ", "currency 'XYZ' is not an ISO 4217 code"),
        ("currency", "eur", "is not an ISO 4217 code"),
        ("lines", [], "order has no lines"),
        ("lines.0.quantity", -1, "lines[0].quantity must be positive (got -1)"),
        ("lines.0.quantity", "2", "lines[0].quantity must be a number"),
        ("lines.0.sku", "", "lines[0].sku must be a non-empty string"),
        ("lines.0.unit_price", -0.5, "lines[0].unit_price must not be negative"),
        ("shipping_status", "lost", "shipping_status 'lost' is not one of"),
        ("payment_status", "unknown", "payment_status 'unknown' is not one of"),
        ("order_id", "", "order_id must be a non-empty string"),
        ("order_id", 12, "order_id must be a non-empty string"),
        ("order_date", "2026-11-27T10:21:00", "order_date must be an ISO 8601 time with an offset"),
        ("order_date", "yesterday", "order_date must be an ISO 8601 time with an offset"),
        ("total", True, "total must be a number"),
        ("total", KeyError, "total must be a number"),
        ("total", float("nan"), "total must be a number"),
        ("lines.0.quantity", float("inf"), "lines[0].quantity must be a number"),
        ("lines.0.quantity", 2**64, "lines[0].quantity must be a number"),
        ("customer", "C-4711", "customer must be an object"),
        ("billing_address.city", None, "billing_address.city must be a string"),
        ("shipping_address", [], "shipping_address must be an object"),
        ("tracking_url", None, "tracking_url must be a string"),
        ("coupon_code", 10, "coupon_code must be a string"),
        ("campaign_id", ["a"], "campaign_id must be a string"),
        ("landing_site", "shop.example.com/", "landing_site must be an http(s) URL"),
        ("landing_site", "x" * 3000, "landing_site is longer than 2048 characters"),
        ("lines.0.product_url", "ftp://example.com/hat", "lines[0].product_url must be an http"),
        ("lines.0.image_url", 3, "lines[0].image_url must be a string"),
        ("lines.0.categories", "Hats", "lines[0].categories must be a list of strings"),
        ("lines.0.categories", ["Hats", ""], "lines[0].categories must hold non-empty strings"),
    ],
)
def test_a_broken_order_is_rejected_with_its_reason(path: str, value: Any, reason: str) -> None:
    problem = order_problem(changed(path, value))
    assert problem is not None
    assert reason in problem


def test_not_an_object_is_rejected() -> None:
    assert order_problem(["SO-1"]) == "order must be a JSON object"


def test_content_hash_ignores_key_order_and_sees_every_change() -> None:
    reordered = dict(reversed(list(VALID.items())))
    assert content_hash(reordered) == content_hash(VALID)
    assert content_hash(changed("shipping_status", "shipped")) != content_hash(VALID)
    assert content_hash(changed("lines.0.quantity", 3)) != content_hash(VALID)


OPTIONAL = {
    "coupon_code": "WELCOME10",
    "campaign_id": "a1b2c3d4e5",
    "landing_site": "https://shop.example.com/?utm_campaign=autumn",
}
LINE_OPTIONAL = {
    "product_url": "https://shop.example.com/products/hat",
    "image_url": "https://shop.example.com/media/hat.jpg",
    "categories": ["Accessories", "Accessories/Hats"],
}


def with_optional(doc: dict[str, Any], order: dict[str, Any], line: dict[str, Any]) -> Any:
    lines = [{**doc["lines"][0], **line}]
    return {**doc, **order, "lines": lines}


def test_the_optional_fields_are_accepted_and_part_of_the_content_hash() -> None:
    full = with_optional(VALID, OPTIONAL, LINE_OPTIONAL)
    assert order_problem(full) is None
    assert content_hash(full) != content_hash(VALID)
    for field in OPTIONAL:
        assert content_hash({**full, field: "changed"}) != content_hash(full)
    for field, value in LINE_OPTIONAL.items():
        other = ["Other"] if isinstance(value, list) else "https://shop.example.com/other"
        assert content_hash(with_optional(full, {}, {field: other})) != content_hash(full)


def test_an_empty_optional_field_is_the_same_order_as_an_absent_one() -> None:
    empty = with_optional(
        VALID, dict.fromkeys(OPTIONAL, ""), {"product_url": "", "image_url": "", "categories": []}
    )
    assert order_problem(empty) is None
    assert content_hash(empty) == content_hash(VALID)


_text = st.text(max_size=40)
_url = st.builds(
    lambda scheme, path: f"{scheme}://shop.example.com/{path}",
    st.sampled_from(["http", "https"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-/", max_size=30),
)
_any = st.one_of(st.none(), st.integers(), st.booleans(), _text, st.lists(_text, max_size=3))


def _url_or_empty(value: str) -> bool:
    return value == "" or re.fullmatch(r"(?i)https?://\S+", value) is not None


@settings(max_examples=150, deadline=None)
@given(
    coupon=st.one_of(_text, _any),
    landing=st.one_of(st.just(""), _url, _any),
    image=st.one_of(st.just(""), _url, _any),
    categories=st.one_of(st.lists(_text, max_size=4), _any),
)
def test_optional_fields_are_valid_exactly_when_their_documented_shape_holds(
    coupon: Any, landing: Any, image: Any, categories: Any
) -> None:
    doc = with_optional(
        VALID,
        {"coupon_code": coupon, "landing_site": landing},
        {"image_url": image, "categories": categories},
    )
    ok_coupon = coupon is None or isinstance(coupon, str)
    ok_landing = landing is None or (isinstance(landing, str) and _url_or_empty(landing))
    ok_image = image is None or (isinstance(image, str) and _url_or_empty(image))
    ok_categories = categories is None or (
        isinstance(categories, list) and all(isinstance(c, str) and c.strip() for c in categories)
    )
    problem = order_problem(doc)
    assert (problem is None) == (ok_coupon and ok_landing and ok_image and ok_categories), problem
    if problem is None:
        assert len(content_hash(doc)) == 32


@settings(max_examples=100, deadline=None)
@given(url=st.text(max_size=60))
def test_a_carrier_is_only_named_for_a_known_tracking_host(url: str) -> None:
    carrier = shipment_carrier(url)
    assert carrier == "" or "://" in url
    assert shipment_carrier("https://www.ups.com/track?tracknum=1Z999") == "UPS"
    assert shipment_carrier("https://tools.usps.com/go/TrackConfirmAction?tLabels=94") == "USPS"
    assert shipment_carrier("https://ups.com.evil.example/track") == ""


def _web_url_as_first_written(value: str) -> bool:
    """The URL rule as it was first written (a scan of every character): the compiled check
    that replaced it for speed must accept and refuse exactly the same texts."""
    scheme, _, rest = value.partition("://")
    if scheme.lower() not in ("http", "https") or not rest:
        return False
    return not any(character.isspace() for character in value)


# Texts near the rule's edges: schemes in any case (and look-alikes such as the long s, which
# a case-folding regex takes for an s), "://" or near misses, Unicode whitespace and control
# characters in any position.
_edge = st.sampled_from(
    [
        " ",
        "\t",
        "\n",
        "\x1c",
        "\x85",
        "\xa0",
        "\u2028",
        "\u3000",
        "\u200b",
        "\u017f",
        "\u212a",
        "\u0130",
        "/",
    ]
)
_url_like = st.builds(
    lambda scheme, separator, rest: scheme + separator + "".join(rest),
    st.sampled_from(["http", "https", "HTTP", "hTtPs", "http\u017f", "ftp", "https ", " http", ""]),
    st.sampled_from(["://", ":/", ":///", ""]),
    st.lists(st.one_of(_edge, st.text(max_size=6), st.just("://")), max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(url=st.one_of(_url_like, st.text(max_size=20)))
def test_url_fields_accept_and_refuse_what_the_first_rule_did(url: str) -> None:
    for field, doc in (
        ("lines[0].product_url", changed("lines.0.product_url", url)),
        ("landing_site", changed("landing_site", url)),
    ):
        problem = order_problem(doc)
        if url == "" or _web_url_as_first_written(url):
            assert problem is None, (url, problem)
        else:
            assert problem is not None and problem.startswith(f"{field} must be an http(s) URL")
