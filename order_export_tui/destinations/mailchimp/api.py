"""One Mailchimp API key's requests: the client for its data centre, the connection limit it
shares with every other user of the key in this process, and what a refusal stops.

Each request goes through the caller's retrier and counts only Mailchimp's own answer
(`answers`). 401 and 403 fail at once and stop every later request of this client;
the API key is named by its variable only and scrubbed (with any other credential,
`transport.redaction`) from anything Mailchimp says back.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import weakref
from typing import Any

import httpx
import orjson

from order_export_tui import __version__
from order_export_tui.destinations.base import DestinationError
from order_export_tui.destinations.mailchimp.answers import (
    Answer,
    check_answer,
    expected_answer,
    read_answer,
)
from order_export_tui.transport.http import request_timeout, send
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import Retrier

MAILCHIMP_CONNECTION_LIMIT = 10  # simultaneous connections Mailchimp allows per API key
_DATA_CENTRE = re.compile(r"^[a-z]+[0-9]+$")
_JSON_HEADERS = {"Content-Type": "application/json"}


def data_centre(api_key: str) -> str | None:
    """The data centre a key belongs to: its suffix after the last dash (`...-us6` → us6)."""
    _, dash, suffix = api_key.rpartition("-")
    return suffix if dash and _DATA_CENTRE.match(suffix) else None


# One limit per API key and event loop, shared by every instance (sized by the first one): a
# run and real-time sends in the same process together stay within Mailchimp's limit per key.
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _shared_slots(api_key: str, size: int) -> asyncio.Semaphore:
    per_key = _SLOTS.setdefault(asyncio.get_running_loop(), {})
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    if digest not in per_key:
        per_key[digest] = asyncio.Semaphore(size)
    return per_key[digest]


class MailchimpApi:
    """Requests to the Marketing API with one key; `store_id` only names the store a 403
    forbids."""

    def __init__(
        self,
        *,
        api_key: str | None,
        api_key_env: str,
        store_id: str,
        base_url: str,
        max_connections: int,
        timeout: float,
    ) -> None:
        self.api_key_env = api_key_env
        self.store_id = store_id
        self.max_connections = max(1, min(max_connections, MAILCHIMP_CONNECTION_LIMIT))
        self.timeout = timeout
        self._api_key = api_key or ""
        self._setup_problem = self._find_setup_problem(api_key, base_url)
        self.base_url = (base_url or self._default_base_url()).rstrip("/")
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._refusal: DestinationError | None = None  # after a 401/403 nothing more is sent

    # --- set-up ----------------------------------------------------------------------------

    def _find_setup_problem(self, api_key: str | None, base_url: str) -> str | None:
        env = self.api_key_env
        if not api_key:
            return f"mailchimp.api_key_env: environment variable {env} is not set"
        if not base_url and data_centre(api_key) is None:
            return (
                f"mailchimp.api_key_env: the API key in {env} does not end in a data centre"
                " such as -us6; use the whole key as Mailchimp shows it, or set mailchimp.base_url"
            )
        return None

    def _default_base_url(self) -> str:
        return f"https://{data_centre(self._api_key) or 'invalid'}.api.mailchimp.com/3.0"

    def ensure_client(self) -> httpx.AsyncClient:
        """The client, made on first use; a setting that cannot work fails here."""
        if self._setup_problem is not None:
            raise DestinationError(self._setup_problem)
        if self._client is None:
            limits = httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
            )
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                auth=httpx.BasicAuth("order-export", self._api_key),
                timeout=request_timeout(self.timeout),
                limits=limits,
                headers={"User-Agent": f"order-export/{__version__}"},
            )
            self._slots = _shared_slots(self._api_key, self.max_connections)
        return self._client

    @property
    def usable(self) -> bool:
        """Open, and its key not refused: worth a last request (clearing `is_syncing`)."""
        return self._client is not None and self._refusal is None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- requests --------------------------------------------------------------------------

    async def require(self, retrier: Retrier, path: str, what: str) -> Answer:
        answer = await self.request(retrier, "GET", path)
        if not answer.ok:
            raise DestinationError(self.redact(f"cannot {what}: {answer.reason()}"))
        return answer

    async def request(self, retrier: Retrier, method: str, path: str, body: Any = None) -> Answer:
        """One request through the retry policy, within the shared connection limit."""
        client = self.ensure_client()
        slots = self._slots
        assert slots is not None
        content = None if body is None else orjson.dumps(body)
        headers = None if body is None else _JSON_HEADERS
        what = f"Mailchimp {method} {path}"
        expected = expected_answer(method, path, body)

        async def attempt() -> httpx.Response:
            if self._refusal is not None:  # another request was refused: do not send this one
                raise DestinationError(*self._refusal.args)
            async with slots:
                request = client.build_request(method, path, content=content, headers=headers)
                response = await send(client, request, what)
            if response.status_code not in (401, 403):
                check_answer(response, what, expected, method)
            return response

        answer = read_answer(await retrier.call(what, attempt))
        if answer.status in (401, 403):
            self._refusal = self._refused(answer)
            raise self._refusal
        return answer

    def _refused(self, answer: Answer) -> DestinationError:
        said = self.redact(answer.reason())
        if answer.status == 401:
            return DestinationError(
                f"Mailchimp refused the API key in {self.api_key_env} (mailchimp.api_key_env):"
                f" {said.rstrip('.')}. Check the key, and that its data centre matches"
                f" {self.base_url}"
            )
        return DestinationError(
            f"Mailchimp forbids this API key ({self.api_key_env}) to use store"
            f" {self.store_id!r}: {said}"
        )

    def redact(self, text: str) -> str:
        """`text` without the API key or any other credential: for Mailchimp's own words."""
        if self._api_key:
            text = text.replace(self._api_key, "[API key]")
        return redact(text)
