"""The Mailchimp destination: orders into an e-commerce store of the Marketing API
(interfaces.md §5).

Each order travels on its own requests, up to `mailchimp.max_connections` at once (never more
than Mailchimp's 10 per key), shared by everything this destination does:
- the store is looked up when a run opens and created on first use (with the configured
  audience, which can never change afterwards);
- before an order goes, the products its lines refer to exist: created or updated from the
  item data only when new or changed since last sent (what was sent is remembered in the state
  database), never with an old order's price; its customer is upserted (once per run);
- a new order is created (`POST`); one that already exists (a crash between sending and
  recording) is updated instead, never skipped. An updated order is `PATCH`ed with only its
  statuses when nothing else changed, else whole; a `PATCH` that finds no order creates it;
- only a backfill marks the store `is_syncing` (no automation e-mails): the first run to a
  store that holds none of its orders yet, or a run made with `backfill = True` (`run
  --since`); `close()` clears the flag however the run ended, and a flag that a killed run
  left behind is cleared when the next one opens. Every other run, and every real-time send,
  goes with `is_syncing` false. A real-time send for a store that this process is backfilling
  is held until the backfill ends (`HeldForBackfillError`, a transient error: the real-time
  queue tries it again), so its notification is not silenced.

Only the documented success counts: HTTP 200 with the JSON object of what was asked for (its
`id` that of the store, customer, product, variant or order the request was about). A web
page, an empty or unreadable body, another shape, or an error status without Mailchimp's
problem document is not Mailchimp's answer: a transient failure, like no answer at all.

What fails what: transport errors, 429 and 5xx are transient (the engine's retrier tries again);
401 and 403 fail the run at once and stop every other request of this destination; any other
4xx rejects just the order it concerns, with Mailchimp's field and message. The API key is named
by its variable only and scrubbed (with any other credential, `transport.redaction`) from
anything Mailchimp says back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import httpx
import orjson

from order_export_tui import __version__
from order_export_tui.destinations import mailchimp_payloads as payloads
from order_export_tui.destinations.base import DestinationError, OrderChange
from order_export_tui.orders import OrderDocument
from order_export_tui.settings import Settings, secret_value
from order_export_tui.state import ProductMemory
from order_export_tui.transport.answers import not_the_platform, read_json, read_json_object
from order_export_tui.transport.http import (
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    display_url,
    request_timeout,
    send,
)
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import (
    Retrier,
    RetriesExhaustedError,
    RetryPolicy,
    TransientError,
)

log = logging.getLogger("order_export.mailchimp")
T = TypeVar("T")

MAILCHIMP_CONNECTION_LIMIT = 10  # simultaneous connections Mailchimp allows per API key
DOCUMENTED_SUCCESS = 200  # every request this destination makes answers 200 when it worked
BATCHES_IN_FLIGHT = 2  # the next batch fills the connections while the last one finishes
_DATA_CENTRE = re.compile(r"^[a-z]+[0-9]+$")
_JSON_HEADERS = {"Content-Type": "application/json"}
_MAX_REASON_TEXT = 300
HOLD_SECONDS = 30.0  # how long a real-time send waits for a backfill before it is re-queued
MISSING_VARIANT = "variant id does not exist"


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


def _answer(response: httpx.Response) -> Answer:
    """The answer as checked by `check_answer`: its body is a JSON object."""
    try:
        body = orjson.loads(response.content) if response.content else {}
    except (orjson.JSONDecodeError, RecursionError):
        body = {}
    return Answer(response.status_code, body if isinstance(body, dict) else {})


def check_answer(response: httpx.Response, what: str, expected: tuple[str, str | None]) -> None:
    """Raise `TransientError` unless this is Mailchimp's own answer: on success HTTP 200 with
    the JSON object asked for (`expected`: the field it must hold, and its value when known:
    the `id` of the store, customer, product, variant or order; `total_items` for a list;
    `health_status` for `/ping`), on a refusal its problem document."""
    status = response.status_code
    if 200 <= status < 300:
        if status != DOCUMENTED_SUCCESS:
            raise not_the_platform(response, what, "the documented success is HTTP 200")
        name, value = expected
        kind = int if name == "total_items" else str
        body = read_json_object(response, what, required={name: kind})
        if value is not None and body[name] != value:
            raise not_the_platform(response, what, f"it is about {body[name]!r}, not {value!r}")
    elif not isinstance(read_json(response, what), dict):
        raise not_the_platform(response, what, "not Mailchimp's problem document")


def _expected(method: str, path: str, body: Any) -> tuple[str, str | None]:
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


_COLLECTIONS = frozenset({"stores", "products", "orders", "customers", "variants"})


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


class HeldForBackfillError(TransientError):
    """A real-time send waits: the store is syncing a backfill, which would silence it."""


class _StoreGate:
    """One store's backfill and real-time sends in this process and event loop: a backfill
    marks the store `is_syncing` only once no real-time send is in flight, and real-time
    sends wait for the backfill's end."""

    def __init__(self) -> None:
        self.backfilling = False
        self.ended = asyncio.Event()
        self.ended.set()
        self.realtime = 0
        self.quiet = asyncio.Event()
        self.quiet.set()

    def start_backfill(self) -> None:
        self.backfilling = True
        self.ended.clear()

    def end_backfill(self) -> None:
        self.backfilling = False
        self.ended.set()


# Per event loop, (base URL, store id) -> its gate. A flag on a store with a live backfill
# here is not one left behind by a killed process.
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _StoreGate]] = (
    weakref.WeakKeyDictionary()
)


def _gate(key: tuple[str, str]) -> _StoreGate:
    per_loop = _GATES.setdefault(asyncio.get_running_loop(), {})
    if key not in per_loop:
        per_loop[key] = _StoreGate()
    return per_loop[key]


async def _all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Await every one concurrently; on the first failure cancel the rest and raise it as is
    (not as an exception group: the engine tells failures apart by their type)."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class MailchimpDestination:
    """Sends orders to one Mailchimp e-commerce store. Safe under concurrent `send_batch` and
    `send_one` calls."""

    name = "mailchimp"
    max_batches_in_flight = BATCHES_IN_FLIGHT

    def __init__(
        self,
        *,
        api_key: str | None,
        api_key_env: str,
        store_id: str,
        list_id: str,
        store_name: str,
        base_url: str = "",
        max_connections: int = 8,
        retry_policy: RetryPolicy | None = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        state_database: Path | None = None,
        backfill: bool = False,
        hold_seconds: float = HOLD_SECONDS,
    ) -> None:
        """`backfill`: this run is a backfill (`run --since`): the store syncs while it runs.
        `state_database`: where the products sent are remembered (None: for this instance
        only)."""
        self.api_key_env = api_key_env
        self.store_id = store_id
        self.list_id = list_id
        self.store_name = store_name
        self.max_connections = max(1, min(max_connections, MAILCHIMP_CONNECTION_LIMIT))
        self.timeout = timeout
        self._api_key = api_key or ""
        self._retry_policy = retry_policy or RetryPolicy(3, 60)
        self._setup_problem = self._find_setup_problem(api_key, base_url)
        self.base_url = (base_url or self._default_base_url()).rstrip("/")
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._refusal: DestinationError | None = None  # after a 401/403 nothing more is sent
        self._store: dict[str, Any] | None = None  # as Mailchimp has it; None: not there yet
        self._store_lock = asyncio.Lock()
        self.backfill = backfill
        self.hold_seconds = hold_seconds
        self._state_database = state_database
        self._backfill_run = False  # decided by open(): this run syncs the store
        self._backfilling = False  # this instance marked the store is_syncing: close() clears it
        self._backfill_run = False  # open(backfill=True): the run is a `run --since` backfill
        self._last_retrier: Retrier | None = None
        self._products: dict[str, asyncio.Future[str | None]] = {}
        self._product_memory: ProductMemory | None = None
        self._sent_products: dict[str, str] = {}  # sku -> product hash Mailchimp confirmed
        self._unsaved_products: dict[str, str] = {}
        self._forgotten_products: set[str] = set()
        self._customers: dict[bytes, asyncio.Future[str | None]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> MailchimpDestination:
        mailchimp = settings.mailchimp
        task = settings.task
        return cls(
            api_key=secret_value(mailchimp.api_key_env),
            api_key_env=mailchimp.api_key_env,
            store_id=mailchimp.store_id,
            list_id=mailchimp.list_id,
            store_name=settings.webstore.name,
            base_url=mailchimp.base_url,
            max_connections=mailchimp.max_connections,
            retry_policy=RetryPolicy(task.max_retries, task.max_retry_interval_seconds),
            state_database=settings.state_database_path,
            timeout=task.request_timeout_seconds,
        )

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

    def _ensure_client(self) -> httpx.AsyncClient:
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

    def _own_retrier(self) -> Retrier:
        """For requests outside a batch (opening, closing, checking)."""
        return Retrier(self._retry_policy)

    # --- the protocol ------------------------------------------------------------------------

    async def open(self, *, backfill: bool = False) -> None:
        """Looks the store up: a wrong audience fails the run before anything is sent, and an
        `is_syncing` flag that a killed run left behind is cleared (it would keep every
        automation e-mail of the store switched off). `backfill`: this run is a `run --since`
        backfill, sent with `is_syncing` true (interfaces.md §5)."""
        self._ensure_client()
        self._forget_run()
        self._open_product_memory()
        retrier = self._own_retrier()
        self._store = await self._fetch_store(retrier)
        stale = self._store is not None and self._store.get("is_syncing")
        if stale and not _gate(self._backfill_key).backfilling:
            log.info("store %s: clearing is_syncing left by an interrupted run", self.store_id)
            await self._set_syncing(retrier, False)
        # A backfill: asked for, or the first run to a store that holds none of its orders.
        asked = backfill or self.backfill
        self._backfill_run = asked or not await self._store_has_orders(retrier)

    async def send_batch(self, changes: Sequence[OrderChange], retrier: Retrier) -> dict[str, str]:
        if not changes:
            return {}
        self._last_retrier = retrier
        docs = [change.document for change in changes]
        await self._ensure_store(retrier, docs, syncing=self._backfill_run)
        reasons = await _all(self._deliver(change, retrier) for change in changes)
        return {
            change.order_id: reason
            for change, reason in zip(changes, reasons, strict=True)
            if reason is not None
        }

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        """One order now, with `is_syncing` false: held while this process backfills the
        store (raises `HeldForBackfillError` after `hold_seconds`, to be tried again)."""
        gate = _gate(self._backfill_key)
        if gate.backfilling:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gate.ended.wait(), self.hold_seconds)
            if gate.backfilling:
                raise HeldForBackfillError(
                    f"store {self.store_id!r} is syncing a backfill (is_syncing would silence"
                    " this order's notifications); it is sent once the backfill ends"
                )
        gate.realtime += 1
        gate.quiet.clear()
        try:
            await self._ensure_store(retrier, [change.document], syncing=False)
            return await self._deliver(change, retrier)
        finally:
            gate.realtime -= 1
            if gate.realtime == 0:
                gate.quiet.set()

    async def check_connection(self) -> str:
        """The key and its data centre (`GET /ping`), the audience (`GET /lists/{id}`) and, if
        the store exists already, that it belongs to that audience."""
        self._ensure_client()
        retrier = self._own_retrier()
        try:
            await self._require(retrier, "/ping", "reach the API")
            list_path = f"/lists/{_segment(self.list_id)}?fields=id,name"
            answer = await self._request(retrier, "GET", list_path)
            if answer.not_found:
                raise DestinationError(
                    f"mailchimp.list_id: there is no audience {self.list_id!r} in this"
                    " Mailchimp account"
                )
            if not answer.ok:
                raise DestinationError(self._redact(f"cannot read the audience: {answer.reason()}"))
            audience = f"audience {answer.body.get('name') or self.list_id} ({self.list_id})"
            store = await self._fetch_store(retrier)
        except RetriesExhaustedError as error:
            raise DestinationError(
                self._redact(
                    f"cannot reach Mailchimp at {display_url(self.base_url)}"
                    f" ({error.last_error}); check the data centre at the end of the key in"
                    f" {self.api_key_env}, or mailchimp.base_url"
                )
            ) from error
        where = display_url(self.base_url)
        if store is None:
            return (
                f"Mailchimp {audience} at {where};"
                f" store {self.store_id} is created by the first export"
            )
        name = store.get("name") or self.store_id
        return f"Mailchimp store {name} ({self.store_id}), {audience} at {where}"

    async def close(self) -> None:
        try:
            if self._backfilling and self._client is not None and self._refusal is None:
                await self._set_syncing(self._last_retrier or self._own_retrier(), False)
        except Exception as error:
            log.warning(
                "store %s is still marked is_syncing; the next run clears it: %s",
                self.store_id,
                self._redact(str(error)),
            )
        finally:
            self._forget_run()
            if self._backfilling:
                _gate(self._backfill_key).end_backfill()
                self._backfilling = False
            self._backfill_run = False
            self._close_product_memory()
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    # --- the store -----------------------------------------------------------------------------

    @property
    def _backfill_key(self) -> tuple[str, str]:
        return (self.base_url, self.store_id)

    @property
    def _store_path(self) -> str:
        return f"/ecommerce/stores/{_segment(self.store_id)}"

    async def _store_has_orders(self, retrier: Retrier) -> bool:
        """Whether the store holds any order (one cheap request); False for no store yet."""
        if self._store is None:
            return False
        path = f"{self._store_path}/orders?count=1&fields=total_items"
        answer = await self._request(retrier, "GET", path)
        if not answer.ok:
            raise DestinationError(
                self._redact(f"cannot read the store's orders: {answer.reason()}")
            )
        total = answer.body.get("total_items")
        return not (type(total) is int and total == 0)

    async def _fetch_store(self, retrier: Retrier) -> dict[str, Any] | None:
        answer = await self._request(retrier, "GET", self._store_path)
        if answer.not_found:
            return None
        if not answer.ok:
            raise DestinationError(self._redact(f"cannot read the store: {answer.reason()}"))
        self._check_audience(answer.body)
        return answer.body

    def _check_audience(self, store: dict[str, Any]) -> None:
        audience = store.get("list_id")
        if audience is not None and audience != self.list_id:
            raise DestinationError(
                f"mailchimp.list_id: store {self.store_id!r} is connected to audience"
                f" {audience!r}, not {self.list_id!r}, and a store's audience cannot change;"
                f" set mailchimp.list_id = {audience!r} or use another mailchimp.store_id"
            )

    async def _ensure_store(
        self, retrier: Retrier, docs: Sequence[OrderDocument], *, syncing: bool
    ) -> None:
        """The store exists (created with the orders' main currency when it did not) and, for
        a backfill, is marked `is_syncing`."""
        async with self._store_lock:
            if syncing and not self._backfilling:
                self._backfilling = True  # from now on close() clears it, whatever happens next
                gate = _gate(self._backfill_key)
                gate.start_backfill()  # real-time sends wait from now on...
                await gate.quiet.wait()  # ...and those in flight finish first (each bounded)
            if self._store is None:
                currency = payloads.main_currency(docs)
                self._store = await self._create_store(retrier, currency, syncing=syncing)
            if syncing and not self._store.get("is_syncing"):
                await self._set_syncing(retrier, True)

    async def _create_store(
        self, retrier: Retrier, currency: str, *, syncing: bool
    ) -> dict[str, Any]:
        body = payloads.store_body(
            self.store_id, self.list_id, self.store_name, currency, syncing=syncing
        )
        answer = await self._request(retrier, "POST", "/ecommerce/stores", body)
        if answer.already_exists:  # created meanwhile by another process
            store = await self._fetch_store(retrier)
            if store is not None:
                return store
        if not answer.ok:
            raise DestinationError(
                self._redact(f"cannot create store {self.store_id!r}: {answer.reason()}")
            )
        log.info("created Mailchimp store %s (currency %s)", self.store_id, currency)
        self._check_audience(answer.body)
        return answer.body

    async def _set_syncing(self, retrier: Retrier, value: bool) -> None:
        answer = await self._request(retrier, "PATCH", self._store_path, {"is_syncing": value})
        if not answer.ok:
            raise DestinationError(
                self._redact(f"cannot set is_syncing on the store: {answer.reason()}")
            )
        if self._store is not None:
            self._store["is_syncing"] = value

    # --- one order -----------------------------------------------------------------------------

    def _order_path(self, order_id: str) -> str:
        return f"{self._store_path}/orders/{_segment(order_id)}"

    async def _deliver(self, change: OrderChange, retrier: Retrier) -> str | None:
        """Create or update one order; None when Mailchimp confirmed it, else why not."""
        doc = change.document
        problem = payloads.unsendable(doc)
        if problem is not None:
            return problem
        if change.kind == "updated":
            outcome = await self._update(doc, change, retrier)
            if isinstance(outcome, str):
                return outcome
            if not outcome.not_found:
                return self._verdict(outcome)
        return await self._create(doc, retrier)

    async def _update(
        self, doc: OrderDocument, change: OrderChange, retrier: Retrier
    ) -> Answer | str:
        """PATCH the order: its statuses only when nothing else changed, else all of it.
        A text is why its products or customer could not be made ready."""
        body = payloads.status_patch_body(doc, change.previous)
        if body is None:
            blocker = await self._prerequisites(doc, retrier)
            if blocker is not None:
                return blocker
            body = payloads.order_patch_body(doc)
        return await self._request(retrier, "PATCH", self._order_path(doc["order_id"]), body)

    async def _create(self, doc: OrderDocument, retrier: Retrier) -> str | None:
        blocker = await self._prerequisites(doc, retrier)
        if blocker is not None:
            return blocker
        body = payloads.order_body(doc)
        answer = await self._request(retrier, "POST", f"{self._store_path}/orders", body)
        if answer.missing_variant:  # a product deleted in Mailchimp since it was sent
            self._forget_products(line["sku"] for line in doc["lines"])
            blocker = await self._prerequisites(doc, retrier)
            if blocker is not None:
                return blocker
            answer = await self._request(retrier, "POST", f"{self._store_path}/orders", body)
        if answer.already_exists:  # sent before, its confirmation lost: update it instead
            path = self._order_path(doc["order_id"])
            answer = await self._request(retrier, "PATCH", path, payloads.order_patch_body(doc))
        if answer.not_found:
            raise DestinationError(
                f"mailchimp.store_id: store {self.store_id!r} is gone from Mailchimp"
                " (deleted during the run?)"
            )
        return self._verdict(answer)

    def _verdict(self, answer: Answer) -> str | None:
        return None if answer.ok else self._redact(answer.reason())

    async def _prerequisites(self, doc: OrderDocument, retrier: Retrier) -> str | None:
        """Make sure the order's products and customer exist; why not, when they cannot."""
        lines = {line["sku"]: line for line in doc["lines"]}
        price_known = self._store is not None and doc["currency"] == self._store.get(
            "currency_code"
        )
        waits = [
            self._once(self._products, sku, partial(self._product, line, price_known, retrier))
            for sku, line in lines.items()
        ]
        customer = payloads.customer_body(doc)
        key = orjson.dumps(customer, option=orjson.OPT_SORT_KEYS)
        waits.append(self._once(self._customers, key, partial(self._customer, customer, retrier)))
        reasons = [reason for reason in await _all(waits) if reason is not None]
        return "; ".join(reasons) if reasons else None

    def _once(
        self,
        memo: dict[Any, asyncio.Future[str | None]],
        key: Any,
        start: Callable[[], Awaitable[str | None]],
    ) -> Awaitable[str | None]:
        """One request per key for the run, however many orders (or batches) wait for it.
        A try that failed or was cancelled is started again by the next one to ask."""
        future = memo.get(key)
        if future is None or (future.done() and (future.cancelled() or future.exception())):
            future = memo[key] = asyncio.ensure_future(start())
            future.add_done_callback(_retrieve_exception)
        # Shielded: an order given up on must not cancel what other orders wait for.
        return asyncio.shield(future)

    async def _product(
        self, line: dict[str, Any], price_known: bool, retrier: Retrier
    ) -> str | None:
        """Create the product, or update it from the item data, only when it is new or
        changed since last sent. Only a new product gets a price (the creating order's)."""
        sku = line["sku"]
        digest = payloads.product_hash(line)
        sent = self._sent_products.get(sku)
        if sent == digest:
            return None
        products = f"{self._store_path}/products"
        answer: Answer | None = None
        if sent is None:
            price = line["unit_price"] if price_known else None
            body = payloads.product_body(line, price)
            answer = await self._request(retrier, "POST", products, body)
            if answer.ok:
                self._remember_product(sku, digest)
                return None
            if not answer.already_exists:
                return self._redact(f"product {sku} could not be created: {answer.reason()}")
        answer = await self._update_product(line, retrier)
        if answer.not_found and sent is not None:  # deleted in Mailchimp since: create again
            self._forget_products([sku])
            return await self._product(line, price_known, retrier)
        if answer.ok:
            self._remember_product(sku, digest)
            return None
        return self._redact(f"product {sku} could not be updated: {answer.reason()}")

    async def _update_product(self, line: dict[str, Any], retrier: Retrier) -> Answer:
        """The product's title, URL and image, then its variant (never its price)."""
        sku = line["sku"]
        product = f"{self._store_path}/products/{_segment(sku)}"
        answer = await self._request(retrier, "PATCH", product, payloads.product_patch_body(line))
        if not answer.ok:
            return answer
        variant = f"{product}/variants/{_segment(sku)}"
        return await self._request(retrier, "PUT", variant, payloads.variant_body(line))

    # --- what was sent of each product ---------------------------------------------------------

    def _open_product_memory(self) -> None:
        if self._state_database is None or self._product_memory is not None:
            return
        self._product_memory = ProductMemory(
            self._state_database, f"mailchimp|{self.base_url}|{self.store_id}"
        )
        self._sent_products = self._product_memory.load()

    def _remember_product(self, sku: str, digest: str) -> None:
        self._sent_products[sku] = digest
        self._unsaved_products[sku] = digest
        self._forgotten_products.discard(sku)
        if len(self._unsaved_products) >= 100:
            self._save_products()

    def _forget_products(self, skus: Iterable[str]) -> None:
        for sku in skus:
            self._sent_products.pop(sku, None)
            self._unsaved_products.pop(sku, None)
            self._forgotten_products.add(sku)
            self._products.pop(sku, None)  # the next order to ask sends it again

    def _save_products(self, memory: ProductMemory | None = None) -> None:
        memory = memory or self._product_memory
        if memory is None:
            return
        memory.save(self._unsaved_products, self._forgotten_products)
        self._unsaved_products = {}
        self._forgotten_products = set()

    def _close_product_memory(self) -> None:
        memory, self._product_memory = self._product_memory, None
        if memory is None:
            return
        try:
            self._save_products(memory)
        except Exception as error:  # a lost memory costs requests, never orders
            log.warning("cannot remember the products sent to Mailchimp: %s", error)
        finally:
            memory.close()
            self._unsaved_products, self._forgotten_products = {}, set()

    async def _customer(self, body: dict[str, Any], retrier: Retrier) -> str | None:
        path = f"{self._store_path}/customers/{_segment(body['id'])}"
        answer = await self._request(retrier, "PUT", path, body)
        if answer.ok:
            return None
        return self._redact(f"customer {body['id']} was refused: {answer.reason()}")

    # --- requests ------------------------------------------------------------------------------

    async def _require(self, retrier: Retrier, path: str, what: str) -> Answer:
        answer = await self._request(retrier, "GET", path)
        if not answer.ok:
            raise DestinationError(self._redact(f"cannot {what}: {answer.reason()}"))
        return answer

    async def _request(self, retrier: Retrier, method: str, path: str, body: Any = None) -> Answer:
        """One request through the retry policy, within the shared connection limit."""
        client = self._ensure_client()
        slots = self._slots
        assert slots is not None
        content = None if body is None else orjson.dumps(body)
        headers = None if body is None else _JSON_HEADERS
        what = f"Mailchimp {method} {path}"
        expected = _expected(method, path, body)

        async def attempt() -> httpx.Response:
            if self._refusal is not None:  # another request was refused: do not send this one
                raise DestinationError(*self._refusal.args)
            async with slots:
                request = client.build_request(method, path, content=content, headers=headers)
                response = await send(client, request, what)
            if response.status_code not in (401, 403):
                check_answer(response, what, expected)
            return response

        answer = _answer(await retrier.call(what, attempt))
        if answer.status in (401, 403):
            self._refusal = self._refused(answer)
            raise self._refusal
        return answer

    def _refused(self, answer: Answer) -> DestinationError:
        said = self._redact(answer.reason())
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

    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "[API key]")
        return redact(text)

    def _forget_run(self) -> None:
        """Drop what this run learnt about products and customers (a later run checks again)."""
        for future in [*self._products.values(), *self._customers.values()]:
            future.cancel()
        self._products.clear()
        self._customers.clear()


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    """Mark a shared request's failure as seen: its waiters may all have been cancelled."""
    if not future.cancelled():
        future.exception()


def _segment(value: str) -> str:
    """An id as one URL path segment."""
    return quote(value, safe="")
