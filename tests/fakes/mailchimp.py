"""A loopback Mailchimp Marketing API (its e-commerce part), built from the official Swagger
file, for the tests and for trying order-export without an account.

    python -m tests.fakes.mailchimp --port 8092 --api-key demo-us1 \\
        [--list-id demo-list] [--latency-ms 20] [--fail-rate 0.2] [--seed 1]

prints its base URL (`http://127.0.0.1:8092/3.0`: set it as `mailchimp.base_url`) and serves
until Ctrl-C. In a test: `with MailchimpFake("key-us1") as fake: ... fake.url ...` (127.0.0.1,
a free port).

What it does as Mailchimp does:
- HTTP Basic auth, any user name, the API key as password (401 otherwise).
- Every request body is validated against the spec's schema for its operation; creates (POST,
  PUT) also may not carry properties the spec does not list. An invalid body is answered 400
  `application/problem+json` with `errors[]` (`field`, `message`) and kept in `schema_errors`
  (tests assert it stays empty). So is every query parameter (declared for the operation,
  of its type, within its bounds: `count` at most 1000).
- Stores (their audience must exist, and `list_id` cannot change), customers (upserts),
  products (created, updated) with their variants, orders (created, updated, deleted; a
  store's list pages with `count`/`offset`, in the order the orders were created, gives
  `total_items`, and honours `fields`/`exclude_fields`). Creating what exists answers 400
  "... already exists"; an order line whose product variant does not exist answers 400 "A
  product with the provided variant ID does not exist"; what is missing answers 404.
- At most 10 requests in flight (Mailchimp's simultaneous connections per key): beyond that,
  429. `max_in_flight` is the most seen at once.
- `is_syncing` history per store (`syncing_history`) and the automation e-mails Mailchimp
  would send (`notifications`): none while the store is syncing.
Faults: a planned fault for the next matching request (`plan`), requests that always fail
(`break_requests`), and, at `fail_rate`, a fault drawn from a seeded `random.Random`: 503, 429,
or a dropped connection (half before the work is done, half after it: the work is done and
the answer lost). `latency` is added to every request.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import itertools
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support.loopback_server import Fault, LoopbackServer, Reply, Request
from tests.support.specs import (
    MAILCHIMP,
    SPECS_DIR,
    require_specs,
    swagger_body_errors,
    swagger_query_errors,
    swagger_route,
)

BASE_PATH = "/3.0"
CONNECTION_LIMIT = 10
PROBLEM_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
VALIDATION_DETAIL = (
    "The resource submitted could not be validated. For field-specific details, see the"
    " 'errors' array."
)

Json = dict[str, Any]


@dataclass
class LostResponse(Fault):
    """Do the work, then drop the connection: the client never learns that it succeeded."""

    lost: bool = True


@dataclass
class Exchange:
    """One request as the fake saw it. `status` 0: the connection was dropped."""

    method: str
    path: str  # below /3.0, without the query
    body: Any
    status: int
    query: str = ""  # the query string as sent


class Problem(Exception):
    """An error answer in Mailchimp's problem document shape."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[Json] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.document: Json = {
            "type": PROBLEM_TYPE,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid4()),
        }
        if errors:
            self.document["errors"] = errors


def _not_found(what: str) -> Problem:
    return Problem(404, "Resource Not Found", f"The requested {what} could not be found.")


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        400, "Invalid Resource", VALIDATION_DETAIL, [{"field": field, "message": message}]
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# Order statuses that make Mailchimp send an automation e-mail (when the store is not syncing).
_FINANCIAL_EMAILS = {
    "paid": "order_invoice",
    "refunded": "refund_confirmation",
    "cancelled": "cancellation_confirmation",
}
_FULFILLMENT_EMAILS = {"shipped": "shipping_confirmation"}


class MailchimpFake(LoopbackServer):
    """The fake's data and observations; every access from a test goes through `lock`."""

    url_path = BASE_PATH

    def __init__(
        self,
        api_key: str = "demo-us1",
        *,
        lists: tuple[str, ...] = ("demo-list",),
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        fail_rate: float = 0.0,
        seed: int = 0,
        connection_limit: int = CONNECTION_LIMIT,
    ) -> None:
        self.api_key = api_key
        self.lists: dict[str, Json] = {
            list_id: {"id": list_id, "name": f"Audience {list_id}"} for list_id in lists
        }
        self.latency = latency
        self.fail_rate = fail_rate
        self.connection_limit = connection_limit
        self.lock = threading.Lock()
        self._rng = random.Random(seed)
        self.refused_products: dict[str, tuple[str, str]] = {}  # product id -> (field, message)
        self.product_updates: list[str] = []  # product ids PATCHed, in order
        # Data: stores by id, the rest by (store id, object id).
        self.stores: dict[str, Json] = {}
        self.customers: dict[tuple[str, str], Json] = {}
        self.products: dict[tuple[str, str], Json] = {}
        self.orders: dict[tuple[str, str], Json] = {}
        # Observations.
        self.exchanges: list[Exchange] = []
        self.schema_errors: list[tuple[str, str, str, str]] = []  # method, path, field, message
        self.syncing_history: dict[str, list[bool]] = {}
        self.notifications: list[tuple[str, str]] = []  # (e-mail kind, order id)
        self.already_exists = 0
        require_specs(MAILCHIMP)
        super().__init__(host, port)  # attempts, in_flight, max_in_flight: counted there

    # --- faults (`plan`, `break_requests`: the base's, on paths below /3.0) -----------------

    def server_error(self, status: int) -> Json:
        return _server_error(status)

    def rate_limited(self, seconds: int) -> Fault:
        return Fault(status=429, body=_too_many().document)  # Mailchimp sends no Retry-After

    def refuse_product(self, product_id: str, field: str, message: str) -> None:
        """Creating this product fails validation, as Mailchimp does for bad product data."""
        with self.lock:
            self.refused_products[product_id] = (field, message)

    def _fault_for(self, method: str, path: str) -> Fault | None:
        fault = self.fault_plan.take(method, path)
        if fault is None and self.fail_rate and self._rng.random() < self.fail_rate:
            return self._random_fault()
        return fault

    def _random_fault(self) -> Fault:
        kind = self._rng.choice(("5xx", "429", "drop"))
        if kind == "5xx":
            return Fault(status=503, body=_server_error(503))
        if kind == "429":
            return self.rate_limited(1)
        return LostResponse(drop=True) if self._rng.random() < 0.5 else Fault(drop=True)

    # --- observations ----------------------------------------------------------------------

    def writes(self) -> list[Exchange]:
        """Every request that changes data (all but GET), answered or not."""
        with self.lock:
            return [e for e in self.exchanges if e.method != "GET"]

    def requests_to(self, method: str, suffix: str) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if e.method == method and e.path.endswith(suffix)]

    def store_orders(self, store_id: str) -> dict[str, Json]:
        with self.lock:
            return {
                oid: dict(order) for (sid, oid), order in self.orders.items() if sid == store_id
            }

    # --- the API -----------------------------------------------------------------------------

    def answer(
        self, method: str, raw_path: str, authorization: str | None, raw: bytes
    ) -> tuple[int, Json]:
        """(status, JSON) for one request that got past the fault injection."""
        try:
            self._authorize(authorization)
            path = urlsplit(raw_path).path
            if not path.startswith(BASE_PATH):
                raise _not_found("resource")
            body = self._parse(raw)
            query = dict(parse_qsl(urlsplit(raw_path).query, keep_blank_values=True))
            with self.lock:
                answer = self._dispatch(method, path[len(BASE_PATH) :] or "/", body, query)
            return (204, None) if answer is None else (200, answer)
        except Problem as problem:
            return problem.status, problem.document

    def _authorize(self, authorization: str | None) -> None:
        scheme, _, encoded = (authorization or "").partition(" ")
        try:
            _, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            password = ""
        if scheme.lower() != "basic" or not hmac.compare_digest(password, self.api_key):
            raise Problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )

    @staticmethod
    def _parse(raw: bytes) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as error:
            raise Problem(
                400,
                "JSON Parse Error",
                f"We encountered an unspecified JSON parsing error: {error}",
            ) from error

    def _dispatch(
        self, method: str, path: str, body: Any, query: dict[str, str] | None = None
    ) -> Json | None:
        if method == "GET" and path in ("/", "/ping"):
            return {"health_status": "Everything's Chimpy!"}
        if method == "GET" and path.startswith("/lists/") and path.count("/") == 2:
            list_id = unquote(path.removeprefix("/lists/"))
            if list_id not in self.lists:
                raise _not_found("list")
            return dict(self.lists[list_id])
        route = swagger_route(MAILCHIMP, path)
        if route is None:
            raise _not_found("resource")
        template, raw_params = route
        params = {name: unquote(value) for name, value in raw_params.items()}
        self._validate(method, path, template, body)
        handler = _HANDLERS.get((method, template))
        if handler is None:
            raise Problem(405, "Method Not Allowed", f"The fake does not do {method} {template}.")
        arguments = self._query_arguments(method, path, template, query or {})
        return handler(self, {**arguments, **params}, body)

    def _query_arguments(
        self, method: str, path: str, template: str, query: dict[str, str]
    ) -> dict[str, str]:
        """The query, each parameter checked against the spec's: declared for the operation,
        of its type, within its bounds (an invalid one is a schema error, answered 400)."""
        errors = swagger_query_errors(query, MAILCHIMP, template, method)
        if errors:
            self.schema_errors.extend((method, path, field, message) for field, message in errors)
            raise Problem(
                400,
                "Invalid Resource",
                VALIDATION_DETAIL,
                [{"field": field, "message": message} for field, message in errors],
            )
        return query

    def _validate(self, method: str, path: str, template: str, body: Any) -> None:
        closed = method in ("POST", "PUT")
        errors = swagger_body_errors(body, MAILCHIMP, template, method, closed=closed)
        if errors:
            self.schema_errors.extend((method, path, field, message) for field, message in errors)
            raise Problem(
                400,
                "Invalid Resource",
                VALIDATION_DETAIL,
                [{"field": field, "message": message} for field, message in errors],
            )

    # --- stores ----------------------------------------------------------------------------

    def _store(self, store_id: str) -> Json:
        if store_id not in self.stores:
            raise _not_found("store")
        return self.stores[store_id]

    def list_stores(self, params: dict[str, str], body: Any) -> Json:
        stores = [dict(store) for store in self.stores.values()]
        return {"stores": stores, "total_items": len(stores)}

    def create_store(self, params: dict[str, str], body: Json) -> Json:
        if body["id"] in self.stores:
            self.already_exists += 1
            raise Problem(400, "Bad Request", "A store with the provided ID already exists.")
        if body["list_id"] not in self.lists:
            raise _invalid("list_id", "The list_id does not exist.")
        stamp = _now()
        store = {"is_syncing": False, **body, "created_at": stamp, "updated_at": stamp}
        self.stores[body["id"]] = store
        self.syncing_history[body["id"]] = [store["is_syncing"]]
        return dict(store)

    def get_store(self, params: dict[str, str], body: Any) -> Json:
        return dict(self._store(params["store_id"]))

    def update_store(self, params: dict[str, str], body: Json) -> Json:
        store = self._store(params["store_id"])
        store.update(body, updated_at=_now())
        if "is_syncing" in body:
            self.syncing_history[params["store_id"]].append(body["is_syncing"])
        return dict(store)

    # --- customers -------------------------------------------------------------------------

    def put_customer(self, params: dict[str, str], body: Json) -> Json:
        self._store(params["store_id"])
        if body["id"] != params["customer_id"]:
            raise _invalid("id", "The customer id must match the one in the URL.")
        key = (params["store_id"], params["customer_id"])
        customer = {**self.customers.get(key, {}), **body, "updated_at": _now()}
        self.customers[key] = customer
        return dict(customer)

    def get_customer(self, params: dict[str, str], body: Any) -> Json:
        key = (params["store_id"], params["customer_id"])
        if key not in self.customers:
            raise _not_found("customer")
        return dict(self.customers[key])

    def _upsert_order_customer(self, store_id: str, customer: Json) -> None:
        key = (store_id, customer["id"])
        if key not in self.customers and not customer.get("email_address"):
            raise _invalid("customer.email_address", "A new customer needs an email address.")
        self.customers[key] = {**self.customers.get(key, {}), **customer}

    # --- products --------------------------------------------------------------------------

    def _product(self, store_id: str, product_id: str) -> Json:
        key = (store_id, product_id)
        if key not in self.products:
            raise _not_found("product")
        return self.products[key]

    def create_product(self, params: dict[str, str], body: Json) -> Json:
        self._store(params["store_id"])
        key = (params["store_id"], body["id"])
        if key in self.products:
            self.already_exists += 1
            raise Problem(
                400, "Bad Request", "A product with the provided ID already exists in the account."
            )
        if body["id"] in self.refused_products:
            raise _invalid(*self.refused_products[body["id"]])
        if not body["variants"]:
            raise _invalid("variants", "A product needs at least one variant.")
        product = {**body, "variants": {v["id"]: dict(v) for v in body["variants"]}}
        self.products[key] = product
        return _product_json(product)

    def get_product(self, params: dict[str, str], body: Any) -> Json:
        return _product_json(self._product(params["store_id"], params["product_id"]))

    def update_product(self, params: dict[str, str], body: Json) -> Json:
        product = self._product(params["store_id"], params["product_id"])
        product.update({key: value for key, value in body.items() if key != "variants"})
        self.product_updates.append(params["product_id"])
        return _product_json(product)

    def put_variant(self, params: dict[str, str], body: Json) -> Json:
        product = self._product(params["store_id"], params["product_id"])
        if body["id"] != params["variant_id"]:
            raise _invalid("id", "The variant id must match the one in the URL.")
        product["variants"][body["id"]] = {**product["variants"].get(body["id"], {}), **body}
        return dict(product["variants"][body["id"]])

    # --- orders ----------------------------------------------------------------------------

    def _check_lines(self, store_id: str, lines: list[Json]) -> None:
        for index, line in enumerate(lines):
            product = self.products.get((store_id, line.get("product_id", "")))
            if product is None or line.get("product_variant_id") not in product["variants"]:
                raise _invalid(
                    f"lines.{index}.product_variant_id",
                    "A product with the provided variant ID does not exist",
                )

    def _order(self, store_id: str, order_id: str) -> Json:
        key = (store_id, order_id)
        if key not in self.orders:
            raise _not_found("order")
        return self.orders[key]

    def create_order(self, params: dict[str, str], body: Json) -> Json:
        store_id = params["store_id"]
        store = self._store(store_id)
        if (store_id, body["id"]) in self.orders:
            self.already_exists += 1
            raise Problem(400, "Bad Request", "An order with the provided ID already exists.")
        self._check_lines(store_id, body["lines"])
        self._upsert_order_customer(store_id, body["customer"])
        order = {**body, "created_while_syncing": bool(store.get("is_syncing"))}
        self.orders[(store_id, body["id"])] = order
        if not store.get("is_syncing"):
            self.notifications.append(("order_confirmation", body["id"]))
            self._notify_status(body["id"], {}, body)
        return dict(order)

    def list_orders(self, params: dict[str, str], body: Any) -> Json:
        """A page of the store's orders, in the order they were created (not by id):
        `count` (default 10, at most 1000) from `offset`, shaped by `fields` and
        `exclude_fields` (dotted paths, as Mailchimp reads them)."""
        store_id = params["store_id"]
        self._store(store_id)
        count, offset = int(params.get("count", 10)), int(params.get("offset", 0))
        theirs = (order for (sid, _), order in self.orders.items() if sid == store_id)
        page = [_order_json(order) for order in itertools.islice(theirs, offset, offset + count)]
        if len(self.stores) == 1:  # every order is this store's (a benchmark's 100,000)
            total = len(self.orders)
        else:
            total = sum(1 for sid, _ in self.orders if sid == store_id)
        answer = {"store_id": store_id, "orders": page, "total_items": total}
        return shaped(answer, params.get("fields"), params.get("exclude_fields"))

    def delete_order(self, params: dict[str, str], body: Any) -> None:
        store_id, order_id = params["store_id"], params["order_id"]
        self._order(store_id, order_id)
        del self.orders[(store_id, order_id)]

    def put_order(self, store_id: str, order: Json) -> None:
        """Put an order straight into a store (a test's drift, a benchmark's seed): no
        request, no notification."""
        with self.lock:
            self.orders[(store_id, order["id"])] = dict(order)

    def remove_order(self, store_id: str, order_id: str) -> None:
        """Delete an order straight from the store, as a person in Mailchimp would."""
        with self.lock:
            del self.orders[(store_id, order_id)]

    def get_order(self, params: dict[str, str], body: Any) -> Json:
        return dict(self._order(params["store_id"], params["order_id"]))

    def update_order(self, params: dict[str, str], body: Json) -> Json:
        store_id, order_id = params["store_id"], params["order_id"]
        order = self._order(store_id, order_id)
        if "lines" in body:
            self._check_lines(store_id, body["lines"])
        before = dict(order)
        customer = {**order["customer"], **body.get("customer", {})}
        order.update(body, customer=customer)
        if not self.stores[store_id].get("is_syncing"):
            self._notify_status(order_id, before, order)
        return dict(order)

    def _notify_status(self, order_id: str, before: Json, after: Json) -> None:
        for field, emails in (
            ("financial_status", _FINANCIAL_EMAILS),
            ("fulfillment_status", _FULFILLMENT_EMAILS),
        ):
            status = after.get(field)
            if status != before.get(field) and status in emails:
                self.notifications.append((emails[status], order_id))

    # --- HTTP ---------------------------------------------------------------------------------

    def reply_to(self, request: Request) -> Reply | None:
        path = request.path.removeprefix(BASE_PATH)
        over_limit = request.in_flight > self.connection_limit
        with self.lock:
            fault = None if over_limit else self._fault_for(request.method, path)
        if self.latency:
            time.sleep(self.latency)
        if over_limit:
            reply: Reply | None = Reply(429, _too_many().document)
        else:
            reply = self.faulted(fault, lambda: self._answer(request))
        with self.lock:
            status = 0 if reply is None else reply.status
            query = urlsplit(request.target).query
            self.exchanges.append(Exchange(request.method, path, request.body, status, query))
        return reply

    def _answer(self, request: Request) -> Reply:
        authorization = request.headers.get("Authorization")
        return Reply(*self.answer(request.method, request.target, authorization, request.raw))

    def content_type(self, reply: Reply) -> str:
        return "application/problem+json" if reply.status >= 400 else "application/json"


def _order_json(order: Json) -> Json:
    """An order as Mailchimp shows it: what was sent, without the fake's own notes."""
    return {key: value for key, value in order.items() if key != "created_while_syncing"}


def shaped(answer: Json, fields: str | None, exclude_fields: str | None) -> Json:
    """`answer` with only the dotted paths in `fields` (when given), without those in
    `exclude_fields`; a path through an array applies to each of its items."""
    if fields:
        answer = _keep(answer, _path_tree(fields))
    if exclude_fields:
        answer = _drop(answer, _path_tree(exclude_fields))
    return answer


PathTree = dict[str, "PathTree"]


def _path_tree(paths: str) -> PathTree:
    tree: PathTree = {}
    for path in filter(None, (p.strip() for p in paths.split(","))):
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _keep(value: Any, tree: PathTree) -> Any:
    if isinstance(value, list):
        return [_keep(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: _keep(value[key], below) if below else value[key]
        for key, below in tree.items()
        if key in value
    }


def _drop(value: Any, tree: PathTree) -> Any:
    if isinstance(value, list):
        return [_drop(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: _drop(item, tree[key]) if key in tree else item
        for key, item in value.items()
        if key not in tree or tree[key]
    }


def _product_json(product: Json) -> Json:
    return {**product, "variants": [dict(v) for v in product["variants"].values()]}


def _server_error(status: int) -> Json:
    return Problem(status, "Service Unavailable", "The server is busy; try again.").document


def _too_many() -> Problem:
    return Problem(
        429,
        "Too Many Requests",
        f"You have exceeded the limit of {CONNECTION_LIMIT} simultaneous connections.",
    )


_STORES = "/ecommerce/stores"
_STORE = f"{_STORES}/{{store_id}}"
_HANDLERS: dict[tuple[str, str], Callable[[MailchimpFake, dict[str, str], Any], Json | None]] = {
    ("GET", _STORES): MailchimpFake.list_stores,
    ("POST", _STORES): MailchimpFake.create_store,
    ("GET", _STORE): MailchimpFake.get_store,
    ("PATCH", _STORE): MailchimpFake.update_store,
    ("GET", f"{_STORE}/customers/{{customer_id}}"): MailchimpFake.get_customer,
    ("PUT", f"{_STORE}/customers/{{customer_id}}"): MailchimpFake.put_customer,
    ("POST", f"{_STORE}/products"): MailchimpFake.create_product,
    ("GET", f"{_STORE}/products/{{product_id}}"): MailchimpFake.get_product,
    ("PATCH", f"{_STORE}/products/{{product_id}}"): MailchimpFake.update_product,
    (
        "PUT",
        f"{_STORE}/products/{{product_id}}/variants/{{variant_id}}",
    ): MailchimpFake.put_variant,
    ("GET", f"{_STORE}/orders"): MailchimpFake.list_orders,
    ("POST", f"{_STORE}/orders"): MailchimpFake.create_order,
    ("GET", f"{_STORE}/orders/{{order_id}}"): MailchimpFake.get_order,
    ("PATCH", f"{_STORE}/orders/{{order_id}}"): MailchimpFake.update_order,
    ("DELETE", f"{_STORE}/orders/{{order_id}}"): MailchimpFake.delete_order,
}


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A loopback Mailchimp for order-export.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--api-key", default="demo-us1")
    parser.add_argument(
        "--list-id", action="append", help="an audience that exists (default: demo-list)"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests faulted")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (SPECS_DIR / MAILCHIMP).exists():
        sys.exit(f"the official spec {SPECS_DIR / MAILCHIMP} is needed to validate requests")
    fake = MailchimpFake(
        args.api_key,
        lists=tuple(args.list_id or ["demo-list"]),
        host=args.host,
        port=args.port,
        latency=args.latency_ms / 1000,
        fail_rate=args.fail_rate,
        seed=args.seed,
    )
    with fake:
        print(fake.url, flush=True)
        print(
            f"Fake Mailchimp: audiences {', '.join(fake.lists)}; Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
