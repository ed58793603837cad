"""Validation of the webhook's event bodies (interfaces.md §4) and their identity."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from order_export_tui.orders import PAYMENT_STATUSES, order_problem
from order_export_tui.state import ORDER_COMPLETED, PAYMENT_STATUS


class InvalidEventError(ValueError):
    """The body is not an acceptable event; the message says why (answered 400)."""


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidEventError(f"not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise InvalidEventError("the body must be a JSON object")
    return value


def check_order_completed(event: dict[str, Any]) -> str:
    """The order id of a valid order document, else `InvalidEventError`."""
    problem = order_problem(event)
    if problem is not None:
        raise InvalidEventError(f"invalid order: {problem}")
    return event["order_id"]


def check_payment_status(event: dict[str, Any]) -> str:
    order_id = event.get("order_id")
    if not isinstance(order_id, str) or not order_id.strip():
        raise InvalidEventError("order_id must be a non-empty string")
    status = event.get("payment_status")
    if status not in PAYMENT_STATUSES:
        raise InvalidEventError(
            f"payment_status {status!r} is not one of {', '.join(PAYMENT_STATUSES)}"
        )
    occurred_at = event.get("occurred_at")
    try:
        valid_time = (
            isinstance(occurred_at, str) and datetime.fromisoformat(occurred_at).tzinfo is not None
        )
    except ValueError:
        valid_time = False
    if not valid_time:
        raise InvalidEventError("occurred_at must be an ISO 8601 time with an offset")
    return order_id


CHECKS = {ORDER_COMPLETED: check_order_completed, PAYMENT_STATUS: check_payment_status}


def dedupe_key(kind: str, event: dict[str, Any]) -> str:
    """Identical events (whatever their key order or white space) share this key."""
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(kind.encode() + b"\0" + canonical).hexdigest()
