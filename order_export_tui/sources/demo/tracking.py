"""Carriers' tracking numbers and tracking URLs for generated shipments."""

from __future__ import annotations

import random
from collections.abc import Callable

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
