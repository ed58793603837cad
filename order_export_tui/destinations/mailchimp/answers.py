"""How Mailchimp's answers are read, and which one is each request's documented success.

Only the documented success counts: HTTP 200 with the JSON object of what was asked for (its
`id` that of the store, customer, product, variant or order the request was about); for a
DELETE, HTTP 204 with no body (the spec's "Empty Response"). A web
page, an empty or unreadable body, another shape, or an error status without Mailchimp's
problem document is not Mailchimp's answer: a transient failure, like no answer at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from order_export_tui.transport.answers import not_the_platform, read_json, read_json_object

DOCUMENTED_SUCCESS = 200  # every request but a DELETE answers 200 when it worked
DELETED = 204  # a DELETE's documented success: no body
MISSING_VARIANT = "variant id does not exist"
_MAX_REASON_TEXT = 300
_COLLECTIONS = frozenset({"stores", "products", "orders", "customers", "variants"})


@dataclass(frozen=True, slots=True)
class Answer:
    """Mailchimp's answer to one request: its status and its JSON (a problem document for
    an error)."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def missing_variant(self) -> bool:
        return self.status == 400 and MISSING_VARIANT in self.reason().lower()

    @property
    def already_exists(self) -> bool:
        return self.status == 400 and "already exists" in str(self.body.get("detail", "")).lower()

    def reason(self) -> str:
        """Mailchimp's words for a refusal: each field with its message when it names them."""
        title = str(self.body.get("title") or f"HTTP {self.status}")
        errors = self.body.get("errors")
        if isinstance(errors, list) and errors:
            details = "; ".join(_field_error(error) for error in errors)
        else:
            details = str(self.body.get("detail") or "")
        text = f"{title}: {details}" if details else title
        return text[:_MAX_REASON_TEXT]


def _field_error(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    field, message = error.get("field"), error.get("message")
    return f"{field}: {message}" if field else str(message)


def read_answer(response: httpx.Response) -> Answer:
    """The answer as checked by `check_answer`: its body is a JSON object."""
    try:
        body = orjson.loads(response.content) if response.content else {}
    except (orjson.JSONDecodeError, RecursionError):
        body = {}
    return Answer(response.status_code, body if isinstance(body, dict) else {})


def check_answer(
    response: httpx.Response, what: str, expected: tuple[str, str | None], method: str = "GET"
) -> None:
    """Raise `TransientError` unless this is Mailchimp's own answer: on success HTTP 200 with
    the JSON object asked for (`expected`: the field it must hold, and its value when known:
    the `id` of the store, customer, product, variant or order; `total_items` for a list;
    `health_status` for `/ping`), for a DELETE HTTP 204 with no body; on a refusal its
    problem document."""
    status = response.status_code
    if method == "DELETE" and 200 <= status < 300:
        if status != DELETED or response.content.strip():
            raise not_the_platform(response, what, "the documented success is HTTP 204, no body")
    elif 200 <= status < 300:
        if status != DOCUMENTED_SUCCESS:
            raise not_the_platform(response, what, "the documented success is HTTP 200")
        name, value = expected
        kind = int if name == "total_items" else str
        body = read_json_object(response, what, required={name: kind})
        if value is not None and body[name] != value:
            raise not_the_platform(response, what, f"it is about {body[name]!r}, not {value!r}")
    elif not isinstance(read_json(response, what), dict):
        raise not_the_platform(response, what, "not Mailchimp's problem document")


def expected_answer(method: str, path: str, body: Any) -> tuple[str, str | None]:
    """What a request's answer must hold: the new object's id for a POST to a collection, a
    count for a list, `health_status` for `/ping`, else the id the path ends with."""
    route = urlsplit(path).path
    if route == "/ping":
        return "health_status", None
    last = route.rsplit("/", 1)[-1]
    if last in _COLLECTIONS:
        if method == "POST" and isinstance(body, dict) and isinstance(body.get("id"), str):
            return "id", body["id"]
        if method == "GET":
            return "total_items", None
    return "id", unquote(last)
