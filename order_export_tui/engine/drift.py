"""The comparison `verify` makes (interfaces.md §8): the ERP's orders of the window against the
platform's copy, both sorted by order id, in one pass with flat memory.

- `missing`: the ERP has the order, the platform does not.
- `different`: the platform's copy differs in a field the product sends. One drift item per
  differing field (§8's JSON carries one `field` per item), in the order of `FIELDS`; a
  repair sends the order once however many of its fields differ.
- `extra`: the platform holds an order the ERP does not list, not marked cancelled there
  (the read-back yields only orders dated in the window).

Money is compared to the cent, e-mail addresses without regard to case, currencies in upper
case. A platform that keeps a record per contact (Dotdigital) may hold an order twice after
it moved to another customer: the copy under the ERP's e-mail is compared field by field, and
each copy under another address is one `different` item for `email` (its repair deletes that
copy, interfaces.md §7). Neither side may repeat an order id out of order: the inputs must be
sorted (`ValueError` otherwise), as a merge of unsorted streams would name false drift.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Literal, TypeVar

from order_export_tui.destinations.readback import PlatformOrder, platform_view
from order_export_tui.orders import OrderDocument

DriftKind = Literal["missing", "different", "extra"]
Value = str | float | int | None

T = TypeVar("T")

MONEY_TOLERANCE = 0.005  # half a cent: totals that round to the same cent are the same


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference between the platform's copy and the ERP. `field`, `platform` and `erp`
    are None unless the kind is `different`."""

    order_id: str
    kind: DriftKind
    field: str | None = None
    platform: Value = None
    erp: Value = None


def _same_money(platform: float, erp: float) -> bool:
    return not math.isnan(platform) and abs(platform - erp) < MONEY_TOLERANCE


def _same_text(platform: str, erp: str) -> bool:
    return platform == erp


def _same_email(platform: str, erp: str) -> bool:
    return platform.strip().lower() == erp.strip().lower()


def _same_currency(platform: str, erp: str) -> bool:
    return platform.strip().upper() == erp.strip().upper()


def _same_count(platform: int, erp: int) -> bool:
    return platform == erp


Same = Callable[[Any, Any], bool]

# The fields the product sends (§8), in the order drift names them, each with its equality.
FIELDS: tuple[tuple[str, Same], ...] = (
    ("payment_status", _same_text),
    ("shipping_status", _same_text),
    ("total", _same_money),
    ("currency", _same_currency),
    ("email", _same_email),
    ("tracking_number", _same_text),
    ("line_count", _same_count),
)


def differences(platform: PlatformOrder, erp: PlatformOrder) -> Iterator[Drift]:
    """A `different` item for each field the platform's copy does not hold as the ERP does."""
    for name, same in FIELDS:
        theirs, ours = getattr(platform, name), getattr(erp, name)
        if not same(theirs, ours):
            shown = None if isinstance(theirs, float) and math.isnan(theirs) else theirs
            yield Drift(erp.order_id, "different", name, shown, ours)


def compare(
    erp: Iterable[OrderDocument | PlatformOrder],
    platform: Iterable[PlatformOrder],
    *,
    listed: Container[str] = (),
) -> Iterator[Drift]:
    """The drift between the ERP's orders and the platform's copy, both sorted by order id
    (the ERP's documents already valid and of the window, or their `platform_view`s: what
    `erp_spill` keeps), ordered by order id. `listed`:
    ids the ERP lists in the window that are not among `erp` (invalid documents, skipped by
    every run): the platform's copy of one of them is not `extra`, so a repair never marks
    an order cancelled only because the ERP's document of it broke."""
    ours = _ascending(((view.order_id, view) for view in map(_view, erp)), repeats=False)
    theirs = _ascending((order.order_id, order) for order in platform)
    copies = ((order_id, [o for _, o in group]) for order_id, group in groupby(theirs, _first))
    doc_item = next(ours, None)
    copy_item = next(copies, None)
    while doc_item is not None or copy_item is not None:
        if copy_item is None or (doc_item is not None and doc_item[0] < copy_item[0]):
            assert doc_item is not None
            yield Drift(doc_item[0], "missing")
            doc_item = next(ours, None)
        elif doc_item is None or copy_item[0] < doc_item[0]:
            order_id, held = copy_item
            if order_id not in listed and not all(order.cancelled for order in held):
                yield Drift(order_id, "extra")
            copy_item = next(copies, None)
        else:
            yield from _compare_copies(doc_item[1], copy_item[1])
            doc_item = next(ours, None)
            copy_item = next(copies, None)


def _view(item: OrderDocument | PlatformOrder) -> PlatformOrder:
    return item if isinstance(item, PlatformOrder) else platform_view(item)


def _compare_copies(erp: PlatformOrder, held: list[PlatformOrder]) -> Iterator[Drift]:
    under_erp_email = [order for order in held if _same_email(order.email, erp.email)]
    if not under_erp_email:
        for order in held:
            yield from differences(order, erp)
        return
    yield from differences(under_erp_email[0], erp)
    for order in held:
        if not _same_email(order.email, erp.email):
            yield Drift(erp.order_id, "different", "email", order.email, erp.email)


def _first(pair: tuple[str, object]) -> str:
    return pair[0]


def _ascending(pairs: Iterable[tuple[str, T]], *, repeats: bool = True) -> Iterator[tuple[str, T]]:
    """The pairs as they come, checking that their order ids never go down (nor repeat,
    unless `repeats`)."""
    last: str | None = None
    for pair in pairs:
        if last is not None and (pair[0] < last or (pair[0] == last and not repeats)):
            raise ValueError(
                f"verify needs orders sorted by order id: {pair[0]!r} came after {last!r}"
            )
        last = pair[0]
        yield pair
