"""Reading a platform's answer: a success counts only when it is the documented one.

A captive portal, a proxy's error page or a wrong base URL can answer `200 text/html`; a
broken server can send truncated or absurdly nested JSON. None of that is the platform's
word, so none of it may mark an order as sent: each is a `TransientError` (retried, then the
run fails or the order is skipped, as for an outage), and its message names the request.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import httpx
import orjson

from order_export_tui.transport.retry import TransientError

MAX_ANSWER_BYTES = 32 * 1024 * 1024  # far above any report, far below a memory problem
_SHOWN_TEXT = 80

JsonType = type | tuple[type, ...]


def describe(response: httpx.Response) -> str:
    """`HTTP 200 text/html` and a glimpse of the body, for a message."""
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    return f"HTTP {response.status_code} {kind}"


def not_the_platform(response: httpx.Response, what: str, why: str) -> TransientError:
    return TransientError(f"{what}: {describe(response)}: {why}; not the platform's answer")


def read_json(response: httpx.Response, what: str, *, max_bytes: int = MAX_ANSWER_BYTES) -> Any:
    """The answer's body as JSON, or `TransientError` naming `what` and what came instead.

    Bounded: a body over `max_bytes` and nesting deeper than orjson's limit (1024) are
    refused, never a `RecursionError`."""
    content = response.content
    if not content.strip():
        raise not_the_platform(response, what, "an empty body where JSON was expected")
    if len(content) > max_bytes:
        raise not_the_platform(response, what, f"a body of {len(content):,} bytes")
    try:
        return orjson.loads(content)
    except (orjson.JSONDecodeError, RecursionError) as error:
        raise not_the_platform(response, what, f"the body is not JSON ({_why(error)})") from error


def read_json_object(
    response: httpx.Response,
    what: str,
    *,
    required: Mapping[str, JsonType] | None = None,
) -> dict[str, Any]:
    """A JSON object holding each `required` field with its type."""
    body = read_json(response, what)
    if not isinstance(body, dict):
        raise not_the_platform(response, what, f"JSON {_kind(body)} where an object was expected")
    for name, kind in (required or {}).items():
        if name not in body:
            raise not_the_platform(response, what, f"the JSON object has no {name!r}")
        value = body[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            raise not_the_platform(
                response, what, f"{name!r} is {_kind(value)}, not {_names(kind)}"
            )
    return body


def read_json_list(response: httpx.Response, what: str) -> list[Any]:
    body = read_json(response, what)
    if not isinstance(body, list):
        raise not_the_platform(response, what, f"JSON {_kind(body)} where an array was expected")
    return body


def expect_status(response: httpx.Response, what: str, documented: Collection[int]) -> None:
    """A 2xx that the spec does not document for this request is no success either."""
    if response.status_code not in documented:
        allowed = ", ".join(str(code) for code in sorted(documented))
        raise not_the_platform(response, what, f"the documented success is HTTP {allowed}")


def expect_no_body_or_json(response: httpx.Response, what: str) -> None:
    """For a success the spec documents without a body: nothing, or JSON (never a web page)."""
    if response.content.strip():
        read_json(response, what)


def _why(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    text = str(error)
    return text if len(text) <= _SHOWN_TEXT else text[: _SHOWN_TEXT - 3] + "..."


def _tuple(kind: JsonType) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: JsonType) -> str:
    return " or ".join(_JSON_NAMES.get(k, k.__name__) for k in _tuple(kind))


_JSON_NAMES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _JSON_NAMES.items():
        if type(value) is kind:
            return name
    return type(value).__name__
