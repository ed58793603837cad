"""Validation of the webhook's event bodies (interfaces.md §4) and their identity."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from order_export_tui.orders import PAYMENT_STATUSES, brief, order_id_problem, order_problem
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
    problem = order_id_problem(order_id)
    if problem:
        raise InvalidEventError(problem)
    status = event.get("payment_status")
    if not isinstance(status, str) or status not in PAYMENT_STATUSES:
        raise InvalidEventError(
            f"payment_status {brief(status)} is not one of {', '.join(PAYMENT_STATUSES)}"
        )
    occurred_at = event.get("occurred_at")
    valid_time = isinstance(occurred_at, str) and len(occurred_at) <= 40
    if valid_time:
        try:
            moment = datetime.fromisoformat(occurred_at)  # type: ignore[arg-type]
            valid_time = moment.tzinfo is not None and moment.astimezone(UTC) is not None
        except (ValueError, OverflowError):
            valid_time = False
    if not valid_time:
        raise InvalidEventError("occurred_at must be an ISO 8601 time with an offset")
    return order_id  # type: ignore[return-value]


CHECKS = {ORDER_COMPLETED: check_order_completed, PAYMENT_STATUS: check_payment_status}


def stored_event(kind: str, event: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a valid event: a payment callback's three fields, an order whole."""
    if kind == PAYMENT_STATUS:
        return {field: event[field] for field in ("order_id", "payment_status", "occurred_at")}
    return event


def webhook_id_key(webhook_id: str) -> str:
    """The dedupe key of a Standard Webhooks message: its `webhook-id` is its identity."""
    return hashlib.sha256(b"webhook-id\0" + webhook_id.encode()).hexdigest()


def dedupe_key(kind: str, event: dict[str, Any]) -> str:
    """Identical events (whatever their key order or white space) share this key."""
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(kind.encode() + b"\0" + canonical).hexdigest()
