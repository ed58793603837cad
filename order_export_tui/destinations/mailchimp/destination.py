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
- an order moved to another customer (its e-mail changed in the ERP, or a verify found it
  under another customer: `OrderChange.remove_from`) is deleted (`DELETE`,
  204; a 404 means a crash came between the steps: it is gone already) and created again
  under the new customer, since a `PATCH` cannot change an order's customer; the engine
  records the move only once both steps are confirmed;
- only a backfill marks the store `is_syncing` (no automation e-mails): the first run to a
  store that holds none of its orders yet, or a run made with `backfill = True` (`run
  --since`); `close()` clears the flag however the run ended, and a flag that a killed run
  left behind is cleared when the next one opens. Every other run, and every real-time send,
  goes with `is_syncing` false. A real-time send for a store that this process is backfilling
  is held until the backfill ends (`backfill`), so its notification is not silenced.

Only the documented success counts (`answers`). What fails what: transport errors,
429 and 5xx are transient (the engine's retrier tries again); 401 and 403 fail the run at once
and stop every other request of this destination (`api`); any other 4xx rejects just
the order it concerns, with Mailchimp's field and message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson

from order_export_tui.destinations.base import DestinationError, OrderChange
from order_export_tui.destinations.mailchimp import payloads
from order_export_tui.destinations.mailchimp.answers import Answer
from order_export_tui.destinations.mailchimp.api import MailchimpApi
from order_export_tui.destinations.mailchimp.backfill import (
    HOLD_SECONDS,
    HeldForBackfillError,
    StoreGate,
    store_gate,
)
from order_export_tui.destinations.mailchimp.product_memory import SentProducts
from order_export_tui.destinations.mailchimp.readback import read_mailchimp_copy
from order_export_tui.destinations.readback import PlatformOrder
from order_export_tui.destinations.readback_spill import SortedSpill
from order_export_tui.destinations.shared_work import OncePerKey, all_or_first_failure
from order_export_tui.orders import OrderDocument
from order_export_tui.settings import Settings, secret_value
from order_export_tui.state import StateLocation, state_location
from order_export_tui.transport.http import DEFAULT_REQUEST_TIMEOUT_SECONDS, display_url
from order_export_tui.transport.retry import Retrier, RetriesExhaustedError, RetryPolicy

__all__ = ["HeldForBackfillError", "MailchimpDestination"]

log = logging.getLogger("order_export.mailchimp")

BATCHES_IN_FLIGHT = 2  # the next batch fills the connections while the last one finishes


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
        state_database: StateLocation | None = None,
        backfill: bool = False,
        hold_seconds: float = HOLD_SECONDS,
    ) -> None:
        """`backfill`: this run is a backfill (`run --since`): the store syncs while it runs.
        `state_database`: where the products sent are remembered (None: for this instance
        only)."""
        self._api = MailchimpApi(
            api_key=api_key,
            api_key_env=api_key_env,
            store_id=store_id,
            base_url=base_url,
            max_connections=max_connections,
            timeout=timeout,
        )
        self.api_key_env = api_key_env
        self.store_id = store_id
        self.list_id = list_id
        self.store_name = store_name
        self.max_connections = self._api.max_connections  # within Mailchimp's limit per key
        self.timeout = timeout
        self.base_url = self._api.base_url  # the key's data centre's, unless set
        self._retry_policy = retry_policy or RetryPolicy(3, 60)
        self._store: dict[str, Any] | None = None  # as Mailchimp has it; None: not there yet
        self._store_lock = asyncio.Lock()
        self.backfill = backfill
        self.hold_seconds = hold_seconds
        self._backfill_run = False  # decided by open(): this run syncs the store
        self._backfilling = False  # this instance marked the store is_syncing: close() clears it
        self._last_retrier: Retrier | None = None
        self._products: OncePerKey[str, str | None] = OncePerKey()  # by sku
        self._sent_products = SentProducts(state_database)
        self._customers: OncePerKey[bytes, str | None] = OncePerKey()  # by customer body

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
            state_database=state_location(settings),
            timeout=task.request_timeout_seconds,
        )

    def _own_retrier(self) -> Retrier:
        """For requests outside a batch (opening, closing, checking)."""
        return Retrier(self._retry_policy)

    # --- the protocol ------------------------------------------------------------------------

    async def open(self, *, backfill: bool = False) -> None:
        """Looks the store up: a wrong audience fails the run before anything is sent, and an
        `is_syncing` flag that a killed run left behind is cleared (it would keep every
        automation e-mail of the store switched off). `backfill`: this run is a `run --since`
        backfill, sent with `is_syncing` true (interfaces.md §5)."""
        self._api.ensure_client()
        self._forget_run()
        self._sent_products.open(f"mailchimp|{self.base_url}|{self.store_id}")
        retrier = self._own_retrier()
        self._store = await self._fetch_store(retrier)
        stale = self._store is not None and self._store.get("is_syncing")
        if stale and not self._gate.backfilling:
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
        reasons = await all_or_first_failure(self._deliver(change, retrier) for change in changes)
        return {
            change.order_id: reason
            for change, reason in zip(changes, reasons, strict=True)
            if reason is not None
        }

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        """One order now, with `is_syncing` false: held while this process backfills the
        store (raises `HeldForBackfillError` after `hold_seconds`, to be tried again)."""
        async with self._gate.realtime_send(self.hold_seconds, self.store_id):
            await self._ensure_store(retrier, [change.document], syncing=False)
            return await self._deliver(change, retrier)

    async def check_connection(self) -> str:
        """The key and its data centre (`GET /ping`), the audience (`GET /lists/{id}`) and, if
        the store exists already, that it belongs to that audience."""
        self._api.ensure_client()
        retrier = self._own_retrier()
        try:
            await self._api.require(retrier, "/ping", "reach the API")
            list_path = f"/lists/{_segment(self.list_id)}?fields=id,name"
            answer = await self._api.request(retrier, "GET", list_path)
            if answer.not_found:
                raise DestinationError(
                    f"mailchimp.list_id: there is no audience {self.list_id!r} in this"
                    " Mailchimp account"
                )
            if not answer.ok:
                raise DestinationError(
                    self._api.redact(f"cannot read the audience: {answer.reason()}")
                )
            audience = f"audience {answer.body.get('name') or self.list_id} ({self.list_id})"
            store = await self._fetch_store(retrier)
        except RetriesExhaustedError as error:
            raise DestinationError(
                self._api.redact(
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

    async def read_back(self, since: datetime, retrier: Retrier) -> SortedSpill[PlatformOrder]:
        """The store's orders dated from `since`, sorted by order id, in a spill the caller
        closes (interfaces.md §8; `mailchimp.readback`)."""
        self._api.ensure_client()
        return await read_mailchimp_copy(self._api, self.store_id, since, retrier)

    async def close(self) -> None:
        try:
            if self._backfilling and self._api.usable:
                await self._set_syncing(self._last_retrier or self._own_retrier(), False)
        except Exception as error:
            log.warning(
                "store %s is still marked is_syncing; the next run clears it: %s",
                self.store_id,
                self._api.redact(str(error)),
            )
        finally:
            self._forget_run()
            if self._backfilling:
                self._gate.end_backfill()
                self._backfilling = False
            self._backfill_run = False
            self._sent_products.close()
            await self._api.close()

    # --- the store -----------------------------------------------------------------------------

    @property
    def _gate(self) -> StoreGate:
        return store_gate(self.base_url, self.store_id)

    @property
    def _store_path(self) -> str:
        return f"/ecommerce/stores/{_segment(self.store_id)}"

    async def _store_has_orders(self, retrier: Retrier) -> bool:
        """Whether the store holds any order (one cheap request); False for no store yet."""
        if self._store is None:
            return False
        path = f"{self._store_path}/orders?count=1&fields=total_items"
        answer = await self._api.request(retrier, "GET", path)
        if not answer.ok:
            raise DestinationError(
                self._api.redact(f"cannot read the store's orders: {answer.reason()}")
            )
        total = answer.body.get("total_items")
        return not (type(total) is int and total == 0)

    async def _fetch_store(self, retrier: Retrier) -> dict[str, Any] | None:
        answer = await self._api.request(retrier, "GET", self._store_path)
        if answer.not_found:
            return None
        if not answer.ok:
            raise DestinationError(self._api.redact(f"cannot read the store: {answer.reason()}"))
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
                await self._gate.start_backfill()
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
        answer = await self._api.request(retrier, "POST", "/ecommerce/stores", body)
        if answer.already_exists:  # created meanwhile by another process
            store = await self._fetch_store(retrier)
            if store is not None:
                return store
        if not answer.ok:
            raise DestinationError(
                self._api.redact(f"cannot create store {self.store_id!r}: {answer.reason()}")
            )
        log.info("created Mailchimp store %s (currency %s)", self.store_id, currency)
        self._check_audience(answer.body)
        return answer.body

    async def _set_syncing(self, retrier: Retrier, value: bool) -> None:
        answer = await self._api.request(retrier, "PATCH", self._store_path, {"is_syncing": value})
        if not answer.ok:
            raise DestinationError(
                self._api.redact(f"cannot set is_syncing on the store: {answer.reason()}")
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
        if change.remove_from:  # moved, or found under another customer by a verify
            refusal = await self._delete_order(doc["order_id"], retrier)
            return refusal if refusal is not None else await self._create(doc, retrier)
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
        return await self._api.request(retrier, "PATCH", self._order_path(doc["order_id"]), body)

    async def _create(self, doc: OrderDocument, retrier: Retrier) -> str | None:
        blocker = await self._prerequisites(doc, retrier)
        if blocker is not None:
            return blocker
        body = payloads.order_body(doc)
        orders = f"{self._store_path}/orders"
        answer = await self._api.request(retrier, "POST", orders, body)
        if answer.missing_variant:  # a product deleted in Mailchimp since it was sent
            self._forget_products(line["sku"] for line in doc["lines"])
            blocker = await self._prerequisites(doc, retrier)
            if blocker is not None:
                return blocker
            answer = await self._api.request(retrier, "POST", orders, body)
        if answer.already_exists:  # sent before, its confirmation lost: update it instead
            path = self._order_path(doc["order_id"])
            answer = await self._api.request(retrier, "PATCH", path, payloads.order_patch_body(doc))
        if answer.not_found:
            raise DestinationError(
                f"mailchimp.store_id: store {self.store_id!r} is gone from Mailchimp"
                " (deleted during the run?)"
            )
        return self._verdict(answer)

    async def _delete_order(self, order_id: str, retrier: Retrier) -> str | None:
        """Delete the order (the first step of a move); None once it is gone, whether this
        request or an earlier one deleted it."""
        answer = await self._api.request(retrier, "DELETE", self._order_path(order_id))
        if answer.ok or answer.not_found:
            return None
        return self._api.redact(f"the order could not be moved: {answer.reason()}")

    def _verdict(self, answer: Answer) -> str | None:
        return None if answer.ok else self._api.redact(answer.reason())

    async def _prerequisites(self, doc: OrderDocument, retrier: Retrier) -> str | None:
        """Make sure the order's products and customer exist; why not, when they cannot."""
        lines = {line["sku"]: line for line in doc["lines"]}
        price_known = self._store is not None and doc["currency"] == self._store.get(
            "currency_code"
        )
        waits = [
            self._products.ask(sku, partial(self._product, line, price_known, retrier))
            for sku, line in lines.items()
        ]
        customer = payloads.customer_body(doc)
        key = orjson.dumps(customer, option=orjson.OPT_SORT_KEYS)
        waits.append(self._customers.ask(key, partial(self._customer, customer, retrier)))
        reasons = [reason for reason in await all_or_first_failure(waits) if reason is not None]
        return "; ".join(reasons) if reasons else None

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
            answer = await self._api.request(retrier, "POST", products, body)
            if answer.ok:
                self._sent_products.remember(sku, digest)
                return None
            if not answer.already_exists:
                return self._api.redact(f"product {sku} could not be created: {answer.reason()}")
        answer = await self._update_product(line, retrier)
        if answer.not_found and sent is not None:  # deleted in Mailchimp since: create again
            self._forget_products([sku])
            return await self._product(line, price_known, retrier)
        if answer.ok:
            self._sent_products.remember(sku, digest)
            return None
        return self._api.redact(f"product {sku} could not be updated: {answer.reason()}")

    async def _update_product(self, line: dict[str, Any], retrier: Retrier) -> Answer:
        """The product's title, URL and image, then its variant (never its price)."""
        sku = line["sku"]
        product = f"{self._store_path}/products/{_segment(sku)}"
        body = payloads.product_patch_body(line)
        answer = await self._api.request(retrier, "PATCH", product, body)
        if not answer.ok:
            return answer
        variant = f"{product}/variants/{_segment(sku)}"
        return await self._api.request(retrier, "PUT", variant, payloads.variant_body(line))

    def _forget_products(self, skus: Iterable[str]) -> None:
        """Deleted in Mailchimp: the next order to ask for them sends them again."""
        skus = list(skus)
        self._sent_products.forget(skus)
        for sku in skus:
            self._products.forget(sku)

    async def _customer(self, body: dict[str, Any], retrier: Retrier) -> str | None:
        path = f"{self._store_path}/customers/{_segment(body['id'])}"
        answer = await self._api.request(retrier, "PUT", path, body)
        if answer.ok:
            return None
        return self._api.redact(f"customer {body['id']} was refused: {answer.reason()}")

    def _forget_run(self) -> None:
        """Drop what this run learnt about products and customers (a later run checks again)."""
        self._products.cancel_all()
        self._customers.cancel_all()


def _segment(value: str) -> str:
    """An id as one URL path segment."""
    return quote(value, safe="")
