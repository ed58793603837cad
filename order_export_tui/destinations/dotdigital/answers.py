"""How Dotdigital's answers are read: its error documents, its import reports, and what the
documented success of each request looks like.

A report's failures become the rejections of their records; a summary that does not account
for every other record rejects those too. Dotdigital's own text is redacted
(`transport.redaction`) before it is kept, as a server may echo the request's credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson

from order_export_tui.destinations.base import DestinationError
from order_export_tui.transport.answers import not_the_platform, read_json_list, read_json_object
from order_export_tui.transport.redaction import redact

COLLECTION_SCOPE = "contact"
COLLECTION_TYPE = "orders"
_MAX_REASON_TEXT = 300
Check = Callable[[httpx.Response, str], None]  # raises TransientError: not the documented answer


def collection_found(collections: Any, collection: str) -> bool:
    """Whether the list of Insight data collections holds `collection`; an existing one must
    hold contact-scoped orders (`DestinationError` naming the setting, else)."""
    if not isinstance(collections, list):
        return False
    for summary in collections:
        if not isinstance(summary, dict):
            continue
        if str(summary.get("collectionName", "")).lower() != collection.lower():
            continue
        scope = summary.get("collectionScope", COLLECTION_SCOPE)
        kind = summary.get("collectionType")
        if scope != COLLECTION_SCOPE or kind != COLLECTION_TYPE:
            raise DestinationError(
                f"dotdigital.collection: {collection!r} already exists in Dotdigital"
                f" as {scope}-scoped {kind!r} data, not contact-scoped orders;"
                " name another collection"
            )
        return True
    return False


# --- report readers and error documents ----------------------------------------------------


def contact_failures(report: dict[str, Any]) -> dict[str, str]:
    """Lower-cased e-mail -> why a contacts import did not create or update that contact."""
    refused: dict[str, str] = {}
    for failure in dicts(report.get("failures")):
        identifiers = failure.get("identifiers")
        email = identifiers.get("email") if isinstance(identifiers, dict) else None
        if not isinstance(email, str):
            continue
        reasons = [_failure_text(item) for item in dicts(failure.get("failures"))]
        refused[email.lower()] = "the contact could not be created: " + (
            "; ".join(reasons) or "no reason given"
        )
    return refused


def _failure_text(item: dict[str, Any]) -> str:
    code = str(item.get("failureCode") or "unknown")
    description = item.get("description")
    return f"{code}: {description}" if description else code


def record_failure_reason(failure: dict[str, Any]) -> str:
    """An import report's failure as a skip reason: `failureReason` plus its details."""
    reason = str(failure.get("failureReason") or "Unknown")
    details = _texts(failure.get("details"))
    return f"{reason}: {'; '.join(details)}" if details else reason


def describe_summary(report: dict[str, Any]) -> str:
    summary = report.get("summary")
    if not isinstance(summary, dict) or not summary:
        return ""
    return " (" + ", ".join(f"{key} {value}" for key, value in summary.items()) + ")"


def error_code(response: httpx.Response) -> str | None:
    body = json_body(response)
    code = body.get("errorCode") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def platform_error(response: httpx.Response) -> str:
    """Dotdigital's `{errorCode, description, details[]}` as one line, else the status;
    redacted, as a server may echo the request's credentials."""
    body = json_body(response)
    if not isinstance(body, dict) or "errorCode" not in body:
        text = response.text.strip()[:_MAX_REASON_TEXT]
        return redact(f"HTTP {response.status_code}" + (f" {text}" if text else ""))
    message = f"HTTP {response.status_code} {body['errorCode']}: {body.get('description', '')}"
    details = [
        f"{item.get('item', '')}: {item.get('description', '')}"
        for item in dicts(body.get("details"))
    ]
    return redact(message + (f" ({'; '.join(details)})" if details else ""))


def unaccounted_records(report: dict[str, Any], records: int, listed: int) -> str | None:
    """Why an Insight import's report does not prove the records it lists no failure for
    were imported, or None when its summary accounts for them all. (`failures` is optional
    in the spec: a report may say `totalRejected: 120` and list none.)"""
    import_id = report.get("importId", "")
    summary = report.get("summary")
    imported = summary.get("totalImported") if isinstance(summary, dict) else None
    total = summary.get("totalRecords", records) if isinstance(summary, dict) else records
    if _count(imported) and _count(total) and imported == records - listed and total == records:
        return None
    said = describe_summary(report) or " (no summary)"
    return (
        f"Dotdigital's report on import {import_id} does not account for this record{said};"
        f" {listed} of {records} failures listed: not recorded as exported, sent again next run"
    )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def json_body(response: httpx.Response) -> Any:
    """The body as JSON; {} when it is none (bounded: never a RecursionError)."""
    try:
        return orjson.loads(response.content)
    except (orjson.JSONDecodeError, RecursionError):
        return {}


# --- what a documented success looks like, per request --------------------------------------


def json_list(response: httpx.Response, what: str) -> None:
    read_json_list(response, what)


def import_id_answer(response: httpx.Response, what: str) -> None:
    body = read_json_object(response, what, required={"importId": str})
    if not body["importId"]:
        raise not_the_platform(response, what, "the import id is empty")


def import_report(response: httpx.Response, what: str) -> None:
    read_json_object(response, what, required={"importId": str, "status": str})


def contact_answer(response: httpx.Response, what: str) -> None:
    read_json_object(response, what)


def dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON array (nothing when it is not one)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _texts(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []
