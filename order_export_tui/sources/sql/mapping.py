"""Rows of the two views -> order documents (interfaces.md §3), NULLs as §9 says.

NULL text reads as "", a NULL amount as 0; `categories` is split on "|". An `order_date` that is
a `datetime` with an offset is that moment (written in UTC); one without an offset, or a
`date`, is this server's local time (a date is its local midnight). Text that reads as one of
those is taken as it. A value that cannot be read as its column's meaning (text in an amount
column, a number where a date belongs) makes its order unreadable: the document then carries
the reason under `UNREADABLE`, naming the view, the column and the value, and the engine skips
it with that reason like any malformed order. `values` reads each value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from order_export_tui.orders import UNREADABLE, OrderDocument, brief
from order_export_tui.sources.sql.columns import ADDRESS_PARTS, LINE_COLUMNS, ORDER_COLUMNS
from order_export_tui.sources.sql.values import (
    UnreadableError,
    amount,
    categories,
    line_number,
    moment,
    quantity,
    text,
)

Row = Sequence[Any]


class DocumentMaker:
    """Builds documents from rows of the two views, given which optional columns they have."""

    def __init__(
        self,
        orders_view: str,
        lines_view: str,
        order_optionals: Sequence[str],
        line_optionals: Sequence[str],
    ) -> None:
        self.orders_view = orders_view
        self.lines_view = lines_view
        self.order_optionals = tuple(order_optionals)
        self.line_optionals = tuple(line_optionals)
        self._order_columns = (*ORDER_COLUMNS, *self.order_optionals)
        self._line_columns = (*LINE_COLUMNS, *self.line_optionals)

    @property
    def order_columns(self) -> tuple[str, ...]:
        return self._order_columns

    @property
    def line_columns(self) -> tuple[str, ...]:
        return self._line_columns

    def document(self, row: Row, line_rows: Sequence[Row]) -> OrderDocument:
        """One order's document; an unreadable value gives a document holding its reason."""
        order_id = row[0] if type(row[0]) is str else order_key(row[0])
        doc = self._plain_order(row, order_id)
        if doc is None:
            try:
                doc = self._order(row, order_id)
            except UnreadableError as error:
                return self._unreadable(order_id, self.orders_view, error)
        lines: list[dict[str, Any]] = doc["lines"]
        for line_row in line_rows:
            line = self._plain_line(line_row)
            if line is None:
                try:
                    line = self._line(line_row)
                except UnreadableError as error:
                    return self._unreadable(order_id, self.lines_view, error)
            lines.append(line)
        return doc

    # The plain paths: a row whose text columns hold text or NULL and whose amounts are finite
    # floats (or integers) is built without a check per value, about three times faster; any
    # other row takes the careful path below, which says what cannot be read.

    def _plain_order(self, row: Row, order_id: str) -> OrderDocument | None:
        texts = (*row[2:7], *row[12:])
        kinds = set(map(type, texts))
        if kinds != _TEXT:
            if not kinds <= _TEXT_OR_NULL:
                return None
            texts = tuple(["" if value is None else value for value in texts])
        money = _plain_amounts(row[7:12])
        if money is None:
            return None
        try:
            when = moment(row[1], "order_date")
        except UnreadableError:
            return None
        (
            customer_id, email, first_name, last_name, currency,
            shipping_method, payment_method,
            b_line1, b_line2, b_city, b_region, b_postcode, b_country,
            s_line1, s_line2, s_city, s_region, s_postcode, s_country,
            shipping_status, payment_status, tracking_number, tracking_url,
        ) = texts[:23]  # fmt: skip
        subtotal, discount, shipping_cost, tax, total = money
        doc: OrderDocument = {
            "order_id": order_id,
            "order_date": when,
            "customer": {
                "id": customer_id,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
            },
            "currency": currency,
            "lines": [],
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
            "shipping_status": shipping_status,
            "payment_status": payment_status,
            "tracking_number": tracking_number,
            "tracking_url": tracking_url,
        }
        for column, value in zip(self.order_optionals, texts[23:], strict=True):
            if value:
                doc[column] = value
        return doc

    def _plain_line(self, row: Row) -> dict[str, Any] | None:
        _, line_no, sku, name, count, unit_price, incl_tax, *extras = row
        if type(line_no) is not int or not -_SAFE < line_no < _SAFE or type(sku) is not str:
            return None
        if type(name) is not str:
            if name is not None:
                return None
            name = ""
        if not (
            type(count) in _NUMBER_TYPES
            and type(unit_price) in _NUMBER_TYPES
            and type(incl_tax) in _NUMBER_TYPES
            and abs(count) + abs(unit_price) + abs(incl_tax) < _SAFE  # False for NaN and inf
        ):
            return None
        if type(count) is float and count.is_integer():
            count = int(count)
        line: dict[str, Any] = {
            "line_no": line_no,
            "sku": sku,
            "name": name,
            "quantity": count,
            "unit_price": float(unit_price),
            "unit_price_incl_tax": float(incl_tax),
        }
        for column, value in zip(self.line_optionals, extras, strict=True):
            if value is None or value == "":
                continue
            if type(value) is not str:
                return None
            if column == "categories":
                names = categories_of(value)
                if names:
                    line[column] = list(names)
            else:
                line[column] = value
        return line

    def _order(self, row: Row, order_id: str) -> OrderDocument:
        (
            _, order_date, customer_id, email, first_name, last_name, currency,
            subtotal, discount, shipping_cost, tax, total, shipping_method, payment_method,
            b_line1, b_line2, b_city, b_region, b_postcode, b_country,
            s_line1, s_line2, s_city, s_region, s_postcode, s_country,
            shipping_status, payment_status, tracking_number, tracking_url,
        ) = row[:30]  # fmt: skip
        doc: OrderDocument = {
            "order_id": order_id,
            "order_date": moment(order_date, "order_date"),
            "customer": {
                "id": text(customer_id, "customer_id"),
                "email": text(email, "email"),
                "first_name": text(first_name, "first_name"),
                "last_name": text(last_name, "last_name"),
            },
            "currency": text(currency, "currency"),
            "lines": [],
            "subtotal": amount(subtotal, "subtotal"),
            "discount": amount(discount, "discount"),
            "shipping_cost": amount(shipping_cost, "shipping_cost"),
            "tax": amount(tax, "tax"),
            "total": amount(total, "total"),
            "shipping_method": text(shipping_method, "shipping_method"),
            "payment_method": text(payment_method, "payment_method"),
            "billing_address": _address(
                "billing", (b_line1, b_line2, b_city, b_region, b_postcode, b_country)
            ),
            "shipping_address": _address(
                "shipping", (s_line1, s_line2, s_city, s_region, s_postcode, s_country)
            ),
            "shipping_status": text(shipping_status, "shipping_status"),
            "payment_status": text(payment_status, "payment_status"),
            "tracking_number": text(tracking_number, "tracking_number"),
            "tracking_url": text(tracking_url, "tracking_url"),
        }
        for column, value in zip(self.order_optionals, row[30:], strict=True):
            value = text(value, column)
            if value:
                doc[column] = value
        return doc

    def _line(self, row: Row) -> dict[str, Any]:
        _, line_no, sku, name, count, unit_price, incl_tax = row[:7]
        line: dict[str, Any] = {
            "line_no": line_number(line_no, "line_no"),
            "sku": text(sku, "sku"),
            "name": text(name, "name"),
            "quantity": quantity(count, "quantity"),
            "unit_price": amount(unit_price, "unit_price"),
            "unit_price_incl_tax": amount(incl_tax, "unit_price_incl_tax"),
        }
        for column, value in zip(self.line_optionals, row[7:], strict=True):
            if column == "categories":
                names = categories(value, column)
                if names:
                    line[column] = names
            else:
                value = text(value, column)
                if value:
                    line[column] = value
        return line

    @staticmethod
    def _unreadable(order_id: str, view: str, error: UnreadableError) -> OrderDocument:
        return {
            "order_id": order_id,
            UNREADABLE: f"{view}.{error.column} of order {brief(order_id)}: {error}",
        }


_TEXT = {str}
_TEXT_OR_NULL = {str, type(None)}


_NUMBER_TYPES = frozenset((float, int))
_SAFE = 2**53  # the largest magnitude every platform reads exactly (orders.py)


def _plain_amounts(values: tuple[Any, ...]) -> list[float] | None:
    """Finite floats (or integers), each below 2**53, as floats; None for anything else."""
    for value in values:
        if type(value) not in _NUMBER_TYPES:
            return None
    if not sum(map(abs, values)) < _SAFE:  # also False for NaN and infinity
        return None
    return list(map(float, values))


_CATEGORIES_CACHE_SIZE = 4096
categories_cache: dict[str, tuple[str, ...]] = {}


def categories_of(names: str) -> tuple[str, ...]:
    """`categories` split (the same few texts come back line after line: kept)."""
    found = categories_cache.get(names)
    if found is None:
        found = tuple(categories(names, "categories"))
        if len(categories_cache) >= _CATEGORIES_CACHE_SIZE:
            categories_cache.clear()
        categories_cache[names] = found
    return found


def _address(prefix: str, values: tuple[Any, ...]) -> dict[str, str]:
    return {
        part: text(value, f"{prefix}_{part}")
        for part, value in zip(ADDRESS_PARTS, values, strict=True)
    }


def order_key(value: Any) -> str:
    """The order id as text; one that is no text at all keeps its repr (validation skips it)."""
    try:
        return text(value, "order_id")
    except UnreadableError:
        return brief(value)
