"""A loopback Dotdigital, built from the official OpenAPI files, for the tests and for trying
order-export without an account.

    python -m tests.fakes.dotdigital --port 8091 --user demo --password demo \\
        [--latency-ms 20] [--fail-rate 0.2] [--drop-rate 0.05] [--burst-every 50] [--seed 1]

prints its URL and serves until Ctrl-C; point `dotdigital.base_url` at it. In a test:
`with FakeDotdigital("demo", "demo") as fake: ... fake.url ...` (127.0.0.1, a free port).

What it does as Dotdigital does:
- HTTP Basic auth (401 otherwise). Every request body and every path and query parameter is
  validated against the spec's schema; one that does not validate is answered 400 in
  Dotdigital's error shape and listed in `invalid_requests` (tests assert it stays empty).
- Insight data: collections (list, create), bulk imports processed in the background
  (`NotStarted`, `Processing`, then `Finished`) with a `failures[]` report, single-record
  upserts, reads and deletes, and the listing of every contact's records
  (`GET /insightData/v3/contacts/{collectionName}`: pages of at most `limit`, never over the
  1,000 its answer's schema allows, in the order the records were created, the next page's
  `marker` in `_links.next`). A contact-scoped record belongs to its contact: records are
  upserts keyed by (collection, contact, key), so an order sent under a new e-mail leaves
  the old contact's record until it is deleted; a write count per (collection, key). A
  contact-scoped record needs its contact to exist.
- Contacts: bulk import (processed in the background like the Insight import), single upsert
  (PATCH) and read.
- At most five imports of each kind at once; beyond that 429 `tooManyActiveImports` (the
  contacts spec's answer; the Insight spec documents none). `failed_imports_left` makes the
  next Insight imports end `Failed`, `fail_keys` makes chosen records fail with a reason,
  `refuse_contacts` makes a contacts import refuse chosen e-mails.
Faults, drawn from a seeded `random.Random` (the same sequence of requests meets the same
faults): 5xx at a rate; dropped connections (half before the work is done, half after it, so
the work is done and the answer lost); every N requests a burst of 429s with `x-ratelimit-*`
headers, over once its reset time has come or after a few answers (so a test on a fake clock
gets through); the flat limit's `ERROR_APIUSAGE_EXCEEDED` (`usage_exceeded_left`); a wrong
region (`wrong_region`: 403); latency: every request takes at least that long, half of it
before the fake looks at the request (the way in), the rest before it answers (the way back,
which also absorbs the fake's own validation time, not Dotdigital's).

The fake's own rules where Dotdigital documents none: a record's JSON may not hold an array
directly inside an array, its keys are letters, digits and `_` (at most 100 characters), and
a string value is at most 4,000 characters.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import heapq
import hmac
import itertools
import json
import math
import random
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote, urlsplit

import jsonschema

from tests.support.loopback_server import Fault, LoopbackServer, Reply, Request
from tests.support.specs import SPECS_DIR, load_spec, require_specs, schema_for

INSIGHT_SPEC = "dotdigital-insight-data-v3.openapi.json"
CONTACTS_SPEC = "dotdigital-contacts-v3.openapi.json"
MAX_ACTIVE_IMPORTS = 5
LIST_PAGE_MAX = 1000  # the records listing's answer holds at most this many (`maxItems`)
MAX_JSON_KEY = 100
MAX_JSON_STRING = 4000
_JSON_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DROP_BEFORE = "drop before"
_DROP_AFTER = "drop after"


# --- answers --------------------------------------------------------------------------------


Answer = Reply  # (status, body, headers); None in its place drops the connection


def error_body(code: str, description: str, details: list[tuple[str, str]] | None = None) -> Any:
    """Dotdigital's `{errorCode, description, details[]}`."""
    body: dict[str, Any] = {"errorCode": code, "description": description}
    if details:
        body["details"] = [{"item": item, "description": text} for item, text in details]
    return body


class Refusal(Exception):
    """An error answer, raised from wherever the request turned out to be wrong."""

    def __init__(
        self, status: int, code: str, description: str, details: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(description)
        self.answer = Answer(status, error_body(code, description, details))


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    status: int | None  # None: the connection was dropped


# --- the spec ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One operation of a spec, by its path template and method."""

    spec: str
    template: str
    method: str

    @property
    def api(self) -> str:
        return "insightData" if self.spec == INSIGHT_SPEC else "contacts"

    def pointer(self, *parts: str) -> str:
        escaped = self.template.replace("~", "~0").replace("/", "~1")
        return "/".join(["#/paths", escaped, self.method, *parts])

    def definition(self) -> dict[str, Any]:
        return load_spec(self.spec)["paths"][self.template][self.method]  # type: ignore[no-any-return]


@cache
def _validator(spec: str, pointer: str) -> jsonschema.protocols.Validator:
    return _compile(schema_for(spec, pointer))


@cache
def _parameter_validator(operation: Operation, index: int) -> jsonschema.protocols.Validator:
    # A parameter sits in a list, which the spec helper's pointers cannot index: follow its
    # own `$ref` when it has one, else take its (plain) schema as it is.
    schema = operation.definition()["parameters"][index]["schema"]
    if "$ref" in schema:
        return _compile(schema_for(operation.spec, schema["$ref"]))
    return _compile({key: value for key, value in schema.items() if key != "format"})


def _compile(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    return jsonschema.validators.validator_for(schema)(schema)  # type: ignore[no-any-return]


def schema_problem(validator: jsonschema.protocols.Validator, value: Any) -> str | None:
    """Why `value` breaks the validator's schema, or None."""
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(the body)"
    return f"{where}: {error.message[:300]}"


def parameter_problems(
    operation: Operation, path_values: dict[str, str], query: dict[str, str]
) -> list[tuple[str, str]]:
    """(name, problem) for each path or query parameter the spec's schema refuses."""
    problems = []
    for index, parameter in enumerate(operation.definition().get("parameters", [])):
        where = parameter.get("in")
        if where not in ("path", "query"):
            continue
        values = path_values if where == "path" else query
        name = parameter["name"]
        if name not in values:
            if parameter.get("required"):
                problems.append((name, "is required"))
            continue
        value = _typed(parameter.get("schema", {}), values[name])
        problem = schema_problem(_parameter_validator(operation, index), value)
        if problem is not None:
            problems.append((name, problem.split(": ", 1)[-1]))
    return problems


def _typed(schema: dict[str, Any], value: str) -> Any:
    """A path or query value as its schema's type reads it (`limit=1000` is an integer)."""
    if schema.get("type") == "integer":
        with contextlib.suppress(ValueError):
            return int(value)
    return value


# --- the account's data -------------------------------------------------------------------------


@dataclass
class Contact:
    """A contact as the Contacts API v3 keeps it. Its email channel: `email_status` (a new
    contact without one is `subscribed`, the spec's default; an existing one keeps its own
    unless a request sets it), `opt_in_type` (`unknown` until set), its lists and consent
    records."""

    contact_id: int
    email: str
    data_fields: dict[str, Any]
    created: str
    updated: str
    email_status: str = "subscribed"
    opt_in_type: str = "unknown"
    lists: set[int] = field(default_factory=set)
    consent_records: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "contactId": self.contact_id,
            "status": self.email_status,
            "created": self.created,
            "updated": self.updated,
            "identifiers": {"email": self.email},
            "dataFields": dict(self.data_fields),
            "channelProperties": {
                "email": {"status": self.email_status, "optInType": self.opt_in_type}
            },
            "lists": [{"id": list_id} for list_id in sorted(self.lists)],
            "consentRecords": list(self.consent_records),
        }


@dataclass
class ImportJob:
    import_id: str
    kind: str  # "insight" | "contacts"
    body: dict[str, Any]
    starts_at: float
    report: dict[str, Any] | None = None

    def status(self, now: float) -> str:
        if self.report is not None:
            return str(self.report["status"])
        if now >= self.starts_at:
            return "Processing" if self.kind == "insight" else "NotFinished"
        return "NotStarted" if self.kind == "insight" else "NotFinished"


@dataclass
class Faults:
    fail_rate: float = 0.0  # share of requests answered 500/502/503 before any work
    drop_rate: float = 0.0  # share of requests whose connection is dropped
    burst_every: int = 0  # every Nth request starts a burst of 429s (0: never)
    burst_length: int = 3  # a burst ends after this many 429s...
    burst_reset_seconds: int = 1  # ...or when its reset time has come, whichever is first
    rate_limit: int = 300  # reported in x-ratelimit-limit
    latency: float = 0.0  # seconds each request takes at least (a round trip)
    seed: int = 0


def merge_fields(existing: dict[str, Any], new: dict[str, Any], option: str) -> None:
    """Dotdigital's merge options: `overwrite`, `overwrite(-)if(-)not(-)empty`,
    `overwrite(-)if(-)empty` (the import spells them camelCase, the PATCH with dashes)."""
    mode = option.replace("-", "").lower()
    for name, value in new.items():
        if mode == "overwriteifempty" and existing.get(name) not in (None, ""):
            continue
        if mode == "overwriteifnotempty" and value in (None, ""):
            continue
        existing[name] = value


def json_problem(value: Any, path: str = "", in_array: bool = False) -> tuple[str, list[str]]:
    """The import's `failureReason` and details for a record JSON the fake refuses, else
    ("", [])."""
    if isinstance(value, list):
        if in_array:
            return "JsonContainsNestedArray", [f"'{path}' is an array inside an array"]
        for index, item in enumerate(value):
            found = json_problem(item, f"{path}[{index}]", True)
            if found[0]:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            if len(key) > MAX_JSON_KEY:
                return "JsonKeyTooLong", [f"The key '{key[:40]}...' is too long"]
            if not _JSON_KEY.match(key):
                return "JsonKeyInvalidCharacters", [f"The key '{key}' has invalid characters"]
            found = json_problem(item, f"{path}.{key}" if path else key)
            if found[0]:
                return found
    elif isinstance(value, str) and len(value) > MAX_JSON_STRING:
        return "JsonValueTooLong", [f"The value of '{path}' is too long"]
    return "", []


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the fake -----------------------------------------------------------------------------------


Handler = Callable[[dict[str, str], dict[str, str], Any], Answer]
RecordSlot = tuple[str, int, str]  # (lower-cased collection, owner contact id, key)


@dataclass(frozen=True)
class Route:
    operation: Operation
    pattern: re.Pattern[str]
    handler: Handler
    record_body: bool = False  # the single-record PUT: its body is the record's JSON


class FakeDotdigital(LoopbackServer):
    """The fake account and its HTTP server. Thread-safe; use it as a context manager."""

    def __init__(
        self,
        user: str = "demo",
        password: str = "demo",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        import_seconds: float = 0.02,
        finished_status: str = "Finished",
        import_seconds_per_record: float = 0.0,
    ) -> None:
        self._expected_auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.faults = faults or Faults()
        self.import_seconds = import_seconds  # an import takes this long...
        self.import_seconds_per_record = import_seconds_per_record  # ...plus this per record
        self.finished_status = finished_status  # "Complete" is the spec enum's spelling
        self.wrong_region = False  # answer 403 to everything, as another region's API does
        self.usage_exceeded_left = 0  # the next N requests hit the flat hourly limit
        self.fail_keys: dict[str, tuple[str, list[str]]] = {}  # key -> import failure
        self.failed_imports_left = 0  # the next N Insight imports end `Failed`, nothing stored
        self.refuse_contacts: dict[str, tuple[str, str]] = {}  # e-mail -> (failureCode, why)
        # A test's stand-in for whatever sits between the client and the API (a proxy, a
        # broken gateway): given (method, path, the fake's answer), the answer sent instead.
        self.rewrite: Callable[[str, str, Answer], Answer] | None = None
        self.requests: list[SeenRequest] = []
        self.invalid_requests: list[str] = []
        self.internal_errors: list[str] = []  # the fake's own bugs; tests assert none
        self.peak_active_imports = 0
        self._rng = random.Random(self.faults.seed)
        self._request_no = 0
        self._burst_left = 0
        self._burst_ends = 0.0
        self._contact_ids = itertools.count(1001)
        self._contacts: dict[str, Contact] = {}  # lower-cased e-mail -> contact
        self._collections: dict[str, dict[str, str]] = {}  # lower-cased name -> summary
        # (collection, owner contact id, key) -> the record: a contact-scoped record belongs
        # to its contact, so one key may be held by two contacts (an order moved to another).
        self._records: dict[RecordSlot, dict[str, Any]] = {}
        self._listing: list[tuple[int, RecordSlot]] = []  # (sequence, slot) as created
        self._record_sequence = itertools.count(1)
        self._writes: Counter[tuple[str, str]] = Counter()
        self._imports: dict[str, ImportJob] = {}
        self._due: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._fault_lock = threading.Lock()
        self._stopping = False
        self._routes = self._make_routes()
        require_specs(INSIGHT_SPEC, CONTACTS_SPEC)
        super().__init__(host, port)
        self.in_background(self._process_imports)

    # --- lifecycle (the base's: start, stop, `with`, url) and what tests look at -------------

    def stopping(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()

    def records(self, collection: str = "Orders") -> dict[str, dict[str, Any]]:
        """Key -> the record's JSON, for one collection (the last written, when two contacts
        hold the key)."""
        with self._lock:
            held = sorted(
                (stored["written"], key, stored["json"])
                for (name, _, key), stored in self._records.items()
                if name == collection.lower()
            )
            return {key: value for _, key, value in held}

    def held_by(self, key: str, collection: str = "Orders") -> list[str]:
        """The e-mail addresses of the contacts that hold a record with this key."""
        with self._lock:
            return sorted(
                stored["contactIdentity"]["value"]
                for (name, _, held), stored in self._records.items()
                if name == collection.lower() and held == key
            )

    def put_record(
        self, email: str, key: str, value: dict[str, Any], collection: str = "Orders"
    ) -> None:
        """Store a record straight into the account (a test's drift, a benchmark's seed),
        creating its contact and collection when missing; no request, no import."""
        with self._lock:
            if email.lower() not in self._contacts:
                self._upsert_contact(email, {}, "overwrite")
            self._ensure_collection(collection, "contact", "orders")
            self._store_record(collection, key, {"identifier": "email", "value": email}, value)

    def remove_record(self, key: str, collection: str = "Orders") -> None:
        """Delete every contact's record with this key, as a person in Dotdigital would."""
        with self._lock:
            for slot in [s for s in self._records if s[0] == collection.lower() and s[2] == key]:
                del self._records[slot]

    def write_count(self, key: str, collection: str = "Orders") -> int:
        with self._lock:
            return self._writes[(collection.lower(), key)]

    def add_contact(
        self,
        email: str,
        *,
        status: str = "subscribed",
        opt_in_type: str = "unknown",
        lists: tuple[int, ...] = (),
        **data_fields: Any,
    ) -> None:
        with self._lock:
            request = {
                "channelProperties": {"email": {"status": status, "optInType": opt_in_type}},
                "lists": list(lists),
            }
            self._upsert_contact(email, data_fields, "overwrite", request)

    def contact(self, email: str) -> Contact | None:
        """A copy of the contact with this e-mail, or None."""
        with self._lock:
            found = self._contacts.get(email.lower())
            return None if found is None else replace(found, lists=set(found.lists))

    def has_contact(self, email: str) -> bool:
        with self._lock:
            return email.lower() in self._contacts

    def count(self, method: str, path_prefix: str = "") -> int:
        """How many requests with this method (and path start) reached the fake."""
        with self._fault_lock:
            return sum(
                1
                for seen in self.requests
                if seen.method == method and seen.path.startswith(path_prefix)
            )

    # --- one request ------------------------------------------------------------------------

    def reply_to(self, request: Request) -> Answer | None:
        authorization = request.headers.get("Authorization")
        return self.handle(request.method, request.target, authorization, request.raw)

    def server_error(self, status: int) -> Any:
        return error_body("internalServerError", "Please try again")

    def rate_limited(self, seconds: int) -> Fault:
        answer = self._rate_limited(seconds)
        return Fault(status=answer.status, headers=answer.headers, body=answer.body)

    def handle(
        self, method: str, target: str, authorization: str | None, raw: bytes
    ) -> Answer | None:
        """The answer to one request; None drops the connection."""
        arrived = time.monotonic()
        time.sleep(self.faults.latency / 2)
        answer = self._answer_or_fault(method, target, authorization, raw)
        time.sleep(max(0.0, arrived + self.faults.latency - time.monotonic()))
        return answer

    def _answer_or_fault(
        self, method: str, target: str, authorization: str | None, raw: bytes
    ) -> Answer | None:
        path = urlsplit(target).path
        planned = self.fault_plan.take(method, path)
        if planned is not None:
            answer = self.faulted(
                planned, lambda: self._safe_answer(method, target, authorization, raw)
            )
            self._saw(method, path, None if answer is None else answer.status)
            return answer
        fault = self._draw_fault()
        if isinstance(fault, Answer):
            self._saw(method, path, fault.status)
            return fault
        if fault == _DROP_BEFORE:
            self._saw(method, path, None)
            return None
        answer = self._safe_answer(method, target, authorization, raw)
        if self.rewrite is not None:
            answer = self.rewrite(method, path, answer)
        self._saw(method, path, None if fault == _DROP_AFTER else answer.status)
        return None if fault == _DROP_AFTER else answer

    def _safe_answer(
        self, method: str, target: str, authorization: str | None, raw: bytes
    ) -> Answer:
        try:
            return self._answer(method, target, authorization, raw)
        except Exception as error:  # a bug in the fake: say so rather than drop the line
            path = urlsplit(target).path
            self.internal_errors.append(f"{method} {path}: {type(error).__name__}: {error}")
            return Answer(500, error_body("fakeError", f"{type(error).__name__}: {error}"))

    def _saw(self, method: str, path: str, status: int | None) -> None:
        with self._fault_lock:
            self.requests.append(SeenRequest(method, path, status))

    def _draw_fault(self) -> Answer | str | None:
        faults = self.faults
        with self._fault_lock:
            self._request_no += 1
            now = time.monotonic()
            if faults.burst_every and self._request_no % faults.burst_every == 0:
                self._burst_left = faults.burst_length
                self._burst_ends = now + faults.burst_reset_seconds
            if self._burst_left > 0 and now < self._burst_ends:
                self._burst_left -= 1
                return self._rate_limited(math.ceil(self._burst_ends - now))
            draw = self._rng.random()
            if draw < faults.drop_rate:
                return _DROP_BEFORE if draw < faults.drop_rate / 2 else _DROP_AFTER
            if draw < faults.drop_rate + faults.fail_rate:
                status = self._rng.choice((500, 502, 503))
                return Answer(status, error_body("internalServerError", "Please try again"))
        return None

    def _rate_limited(self, reset_seconds: int) -> Answer:
        headers = {
            "x-ratelimit-limit": str(self.faults.rate_limit),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(reset_seconds),
        }
        body = error_body("tooManyRequests", "The API call rate limit has been reached")
        return Answer(429, body, headers)

    def _answer(self, method: str, target: str, authorization: str | None, raw: bytes) -> Answer:
        if authorization is None or not hmac.compare_digest(authorization, self._expected_auth):
            return Answer(401, error_body("unauthorized", "Authorization has been denied"))
        if self.wrong_region:
            return Answer(403, error_body("forbidden", "This account belongs to another region"))
        with self._fault_lock:
            if self.usage_exceeded_left > 0:
                self.usage_exceeded_left -= 1
                body = error_body("ERROR_APIUSAGE_EXCEEDED", "The hourly API call limit is used up")
                return Answer(400, body)
        try:
            return self._dispatch(method, target, raw)
        except Refusal as refusal:
            return refusal.answer

    def _dispatch(self, method: str, target: str, raw: bytes) -> Answer:
        parts = urlsplit(target)
        route, path_values = self._route(method, parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        problems = parameter_problems(route.operation, path_values, query)
        if problems:
            self._invalid(route.operation, f"{method} {parts.path}: {problems}")
        body = self._body(route, raw)
        with self._lock:
            return route.handler(path_values, query, body)

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for route in self._routes:
            if route.operation.method != method.lower():
                continue
            match = route.pattern.fullmatch(path)
            if match:
                return route, {name: unquote(value) for name, value in match.groupdict().items()}
        self.invalid_requests.append(f"{method} {path}: no such endpoint")
        raise Refusal(404, "notFound", f"No endpoint {method} {path}")

    def _body(self, route: Route, raw: bytes) -> Any:
        operation = route.operation
        if "requestBody" not in operation.definition():
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            self._invalid(operation, "the body is not JSON", code="badJson")
        if route.record_body:
            return self._record_body(operation, body)
        pointer = operation.pointer("requestBody", "content", "application~1json", "schema")
        problem = schema_problem(_validator(operation.spec, pointer), body)
        if problem is not None:
            self._invalid(operation, problem)
        return body

    def _record_body(self, operation: Operation, body: Any) -> Any:
        """The spec types this body as a string in JSON format; Dotdigital takes the record's
        JSON object. Both readings pass: an object, or a string holding one."""
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                self._invalid(operation, "the string does not hold JSON", code="badJson")
        if not isinstance(body, dict):
            self._invalid(operation, "the record must be a JSON object")
        return body

    def _invalid(
        self, operation: Operation, problem: str, code: str = "validationFailed"
    ) -> NoReturn:
        self.invalid_requests.append(f"{operation.method.upper()} {operation.template}: {problem}")
        raise Refusal(
            400, f"{operation.api}:{code}", "The request is not valid", [("request", problem)]
        )

    # --- routes -------------------------------------------------------------------------------

    def _make_routes(self) -> list[Route]:
        table: list[tuple[str, str, str, Handler, bool]] = [
            (INSIGHT_SPEC, "/insightData/v3/collections", "get", self._list_collections, False),
            (
                INSIGHT_SPEC,
                "/insightData/v3/collections/{collectionName}",
                "post",
                self._create_collection,
                False,
            ),
            (INSIGHT_SPEC, "/insightData/v3/import", "put", self._submit_insight_import, False),
            (
                INSIGHT_SPEC,
                "/insightData/v3/import/{importId}",
                "get",
                self._insight_import_status,
                False,
            ),
            (
                INSIGHT_SPEC,
                "/insightData/v3/contacts/{identifier}/{value}/{collectionName}/{recordId}",
                "put",
                self._put_record,
                True,
            ),
            (
                INSIGHT_SPEC,
                "/insightData/v3/contacts/{identifier}/{value}/{collectionName}/{recordId}",
                "get",
                self._get_record,
                False,
            ),
            (
                INSIGHT_SPEC,
                "/insightData/v3/contacts/{identifier}/{value}/{collectionName}/{recordId}",
                "delete",
                self._delete_record,
                False,
            ),
            (
                INSIGHT_SPEC,
                "/insightData/v3/contacts/{collectionName}",
                "get",
                self._list_contact_records,
                False,
            ),
            (CONTACTS_SPEC, "/contacts/v3/import", "put", self._submit_contacts_import, False),
            (
                CONTACTS_SPEC,
                "/contacts/v3/import/{importId}",
                "get",
                self._contacts_import_status,
                False,
            ),
            (CONTACTS_SPEC, "/contacts/v3/{identifier}/{value}", "get", self._get_contact, False),
            (
                CONTACTS_SPEC,
                "/contacts/v3/{identifier}/{value}",
                "patch",
                self._patch_contact,
                False,
            ),
        ]
        return [
            Route(Operation(spec, template, method), _template_pattern(template), handler, record)
            for spec, template, method, handler, record in table
        ]

    # --- Insight data -------------------------------------------------------------------------

    def _list_collections(self, path: dict[str, str], query: dict[str, str], body: Any) -> Answer:
        counts = Counter(name for name, _, _ in self._records)
        summaries = [
            {**summary, "recordCount": counts[name]} for name, summary in self._collections.items()
        ]
        return Answer(200, summaries)

    def _create_collection(self, path: dict[str, str], query: dict[str, str], body: Any) -> Answer:
        name = path["collectionName"]
        if name.lower() in self._collections:
            return Answer(200)
        self._ensure_collection(name, query["collectionScope"], query["collectionType"])
        return Answer(201)

    def _ensure_collection(self, name: str, scope: str, kind: str) -> None:
        self._collections.setdefault(
            name.lower(), {"collectionName": name, "collectionScope": scope, "collectionType": kind}
        )

    def _submit_insight_import(
        self, path: dict[str, str], query: dict[str, str], body: Any
    ) -> Answer:
        return self._submit_import("insight", body)

    def _put_record(self, path: dict[str, str], query: dict[str, str], body: Any) -> Answer:
        collection = path["collectionName"]
        if collection.lower() not in self._collections:
            raise Refusal(
                404,
                "insightData:collectionNotFound",
                "The collection could not be found",
                [(collection, "Not found")],
            )
        identity = {"identifier": path["identifier"], "value": path["value"]}
        owner_problem = self._owner_problem(identity)
        if owner_problem[0]:
            raise Refusal(
                404,
                "insightData:contactNotFound",
                "The following contacts could not be found",
                [(path["value"], f"Not found using the identifier '{path['identifier']}'")],
            )
        reason, details = json_problem(body)
        if reason:
            raise Refusal(400, "insightData:invalidJson", reason, [("json", "; ".join(details))])
        created = self._store_record(collection, path["recordId"], identity, body)
        return Answer(201 if created else 204)

    def _get_record(self, path: dict[str, str], query: dict[str, str], body: Any) -> Answer:
        stored = self._records.get(self._record_slot(path))
        if stored is None:
            raise Refusal(404, "insightData:recordNotFound", "The record could not be found")
        return Answer(
            200,
            {
                "key": path["recordId"],
                "contactIdentity": stored["contactIdentity"],
                "json": stored["json"],
            },
        )

    def _delete_record(self, path: dict[str, str], query: dict[str, str], body: Any) -> Answer:
        collection = path["collectionName"]
        if collection.lower() not in self._collections:
            raise Refusal(
                404,
                "insightData:collectionNotFound",
                "The collection could not be found",
                [(collection, "Not found")],
            )
        if self._contact_at(path) is None:
            raise Refusal(
                404,
                "insightData:contactNotFound",
                "The following contacts could not be found",
                [(path["value"], f"Not found using the identifier '{path['identifier']}'")],
            )
        slot = self._record_slot(path)
        if slot not in self._records:
            raise Refusal(
                404,
                "insightData:recordNotFound",
                "The Insight data record could not be found",
                [(path["recordId"], f"Not found in the contacts collection '{collection}'")],
            )
        del self._records[slot]
        return Answer(204)

    def _list_contact_records(
        self, path: dict[str, str], query: dict[str, str], body: Any
    ) -> Answer:
        """A page of every contact's records, in the order they were created: at most
        `limit` and never more than the 1,000 the answer's schema allows, after `marker`."""
        collection = path["collectionName"]
        name = collection.lower()
        if name not in self._collections:
            raise Refusal(
                404,
                "insightData:collectionNotFound",
                "The collection could not be found",
                [(collection, "Not found")],
            )
        limit = min(int(query.get("limit", LIST_PAGE_MAX)), LIST_PAGE_MAX)
        marker = query.get("marker", "")
        after = _marker_sequence(marker)
        start = bisect.bisect_right(self._listing, after, key=_sequence_of)
        items: list[dict[str, Any]] = []
        last = after
        more = False
        for sequence, slot in itertools.islice(self._listing, start, None):
            stored = self._records.get(slot)
            if stored is None or stored["sequence"] != sequence:
                continue  # deleted since (or deleted and created again, listed later)
            if len(items) == limit:
                more = True
                break
            items.append(
                {
                    "key": slot[2],
                    "json": stored["json"],
                    "created": stored["created"],
                    "updated": stored["updated"],
                    "ownerContactId": slot[1],
                }
            )
            last = sequence
        links = {
            "self": _page_link(collection, limit, marker),
            "first": _page_link(collection, limit, ""),
        }
        if more:
            links["next"] = _page_link(collection, limit, _marker(last))
        return Answer(200, {"_links": links, "_items": items})

    def _record_slot(self, path: dict[str, str]) -> RecordSlot:
        contact = self._contact_at(path)
        owner = contact.contact_id if contact is not None else 0
        return (path["collectionName"].lower(), owner, path["recordId"])

    def _store_record(self, collection: str, key: str, identity: Any, value: Any) -> bool:
        """Upsert one record of the contact `identity` names; True when it is new."""
        owner = 0
        if isinstance(identity, dict):
            contact = self._contact_at(
                {"identifier": str(identity.get("identifier")), "value": str(identity.get("value"))}
            )
            owner = contact.contact_id if contact is not None else 0
        slot = (collection.lower(), owner, key)
        now = _now_text()
        stored = self._records.get(slot)
        created = stored is None
        if stored is None:
            stored = {"sequence": next(self._record_sequence), "created": now}
            self._listing.append((stored["sequence"], slot))
        stored.update(
            contactIdentity=identity, json=value, updated=now, written=next(self._record_sequence)
        )
        self._records[slot] = stored
        self._writes[(collection.lower(), key)] += 1
        return created

    def _owner_problem(self, identity: Any) -> tuple[str, list[str]]:
        if not isinstance(identity, dict):
            return "InvalidContactIdentifier", ["A contact-scoped record needs a contactIdentity"]
        identifier, value = identity.get("identifier"), identity.get("value")
        if identifier == "email":
            if isinstance(value, str) and value.lower() in self._contacts:
                return "", []
            return "ContactEmailDoesNotExist", [f"No contact has the e-mail address '{value}'"]
        if identifier == "contactId":
            if any(str(contact.contact_id) == str(value) for contact in self._contacts.values()):
                return "", []
            return "ContactIdDoesNotExist", [f"No contact has the id '{value}'"]
        return "InvalidContactIdentifier", [f"Unknown contact identifier '{identifier}'"]

    # --- contacts -----------------------------------------------------------------------------

    def _submit_contacts_import(
        self, path: dict[str, str], query: dict[str, str], body: Any
    ) -> Answer:
        return self._submit_import("contacts", body)

    def _get_contact(self, path: dict[str, str], query: dict[str, str], body: Any) -> Answer:
        contact = self._contact_at(path)
        if contact is None:
            raise Refusal(
                404,
                "contacts:contactNotFound",
                "The following contacts could not be found",
                [(path["value"], f"Not found using the identifier '{path['identifier']}'")],
            )
        return Answer(200, contact.as_json())

    def _patch_contact(self, path: dict[str, str], query: dict[str, str], body: Any) -> Answer:
        if path["identifier"] != "email":
            raise Refusal(
                400, "contacts:invalidIdentifier", "The fake matches contacts by e-mail only"
            )
        if not _EMAIL.match(path["value"]):
            raise Refusal(
                400,
                "contacts:invalidId",
                f"The id value '{path['value']}' is invalid for the identifier 'email'",
            )
        option = query.get("merge-option", "overwrite")
        data_fields = body.get("dataFields") or {}
        contact, created = self._upsert_contact(path["value"], data_fields, option, body)
        return Answer(201 if created else 200, contact.as_json())

    def _contact_at(self, path: dict[str, str]) -> Contact | None:
        if path["identifier"] == "email":
            return self._contacts.get(path["value"].lower())
        if path["identifier"] == "contactId":
            for contact in self._contacts.values():
                if str(contact.contact_id) == path["value"]:
                    return contact
        return None

    def _upsert_contact(
        self,
        email: str,
        data_fields: dict[str, Any],
        option: str,
        request: dict[str, Any] | None = None,
    ) -> tuple[Contact, bool]:
        """Create or update; the email channel, lists and consent records change only as
        the request says (`channelProperties`, `lists`, `consentRecords`)."""
        now = _now_text()
        contact = self._contacts.get(email.lower())
        created = contact is None
        if contact is None:
            contact = Contact(next(self._contact_ids), email, {}, now, now)
            self._contacts[email.lower()] = contact
        merge_fields(contact.data_fields, data_fields, option)
        request = request or {}
        channels = request.get("channelProperties")
        channel = channels.get("email") if isinstance(channels, dict) else None
        if isinstance(channel, dict):
            contact.email_status = channel.get("status", contact.email_status)
            contact.opt_in_type = channel.get("optInType", contact.opt_in_type)
        contact.lists.update(request.get("lists") or ())
        contact.consent_records.extend(request.get("consentRecords") or ())
        contact.updated = now
        return contact, created

    # --- asynchronous imports -----------------------------------------------------------------

    def _submit_import(self, kind: str, body: dict[str, Any]) -> Answer:
        active = sum(1 for job in self._imports.values() if job.kind == kind and job.report is None)
        if active >= MAX_ACTIVE_IMPORTS:
            api = "insightData" if kind == "insight" else "contacts"
            raise Refusal(
                429,
                f"{api}:tooManyActiveImports",
                "Your import request cannot be accepted as too many imports are being processed"
                " for your account. Please wait for an import to complete and then resubmit.",
            )
        self.peak_active_imports = max(self.peak_active_imports, active + 1)
        now = time.monotonic()
        records = len(body.get("records") or body.get("contacts") or ())
        takes = self.import_seconds + self.import_seconds_per_record * records
        job = ImportJob(str(uuid.uuid4()), kind, body, starts_at=now + takes / 2)
        self._imports[job.import_id] = job
        heapq.heappush(self._due, (now + takes, next(self._sequence), job.import_id))
        self._wakeup.notify_all()
        return Answer(202, {"importId": job.import_id})

    def _insight_import_status(
        self, path: dict[str, str], query: dict[str, str], body: Any
    ) -> Answer:
        return self._import_status("insight", path["importId"])

    def _contacts_import_status(
        self, path: dict[str, str], query: dict[str, str], body: Any
    ) -> Answer:
        return self._import_status("contacts", path["importId"])

    def _import_status(self, kind: str, import_id: str) -> Answer:
        job = self._imports.get(import_id)
        if job is None or job.kind != kind:
            api = "insightData" if kind == "insight" else "contacts"
            raise Refusal(
                404,
                f"{api}:importNotFound",
                f"The import request '{import_id}' could not be found!",
            )
        if job.report is not None:
            return Answer(200, job.report)
        return Answer(200, {"importId": job.import_id, "status": job.status(time.monotonic())})

    def _process_imports(self) -> None:
        """The background worker: finishes each import when it falls due."""
        with self._wakeup:
            while not self._stopping:
                if not self._due:
                    self._wakeup.wait()
                    continue
                due_at, _, import_id = self._due[0]
                wait = due_at - time.monotonic()
                if wait > 0:
                    self._wakeup.wait(wait)
                    continue
                heapq.heappop(self._due)
                job = self._imports[import_id]
                if job.kind == "insight":
                    job.report = self._insight_report(job)
                else:
                    job.report = self._contacts_report(job)

    def _insight_report(self, job: ImportJob) -> dict[str, Any]:
        if self.failed_imports_left > 0:
            self.failed_imports_left -= 1
            return {"importId": job.import_id, "status": "Failed"}
        body = job.body
        name, scope = body["collectionName"], body["collectionScope"]
        self._ensure_collection(name, scope, body["collectionType"])
        failures: list[dict[str, Any]] = []
        seen: set[str] = set()
        for record in body["records"]:
            reason, details = self._record_problem(record, scope, seen)
            seen.add(record["key"])
            if reason:
                failures.append(_failure_entry(record, scope, reason, details))
            else:
                self._store_record(
                    name, record["key"], record.get("contactIdentity"), record["json"]
                )
        total = len(body["records"])
        report: dict[str, Any] = {
            "importId": job.import_id,
            "status": self.finished_status,
            "collectionName": name,
            "summary": {
                "totalRecords": total,
                "totalImported": total - len(failures),
                "totalRejected": len(failures),
            },
        }
        if failures:
            report["failures"] = failures
        return report

    def _record_problem(
        self, record: dict[str, Any], scope: str, seen: set[str]
    ) -> tuple[str, list[str]]:
        key = record["key"]
        if key in self.fail_keys:
            return self.fail_keys[key]
        if key in seen:
            return "DuplicateKey", [f"The key '{key}' appears more than once in the import"]
        if scope == "contact":
            problem = self._owner_problem(record.get("contactIdentity"))
            if problem[0]:
                return problem
        return json_problem(record["json"])

    def _contacts_report(self, job: ImportJob) -> dict[str, Any]:
        option = job.body.get("mergeOption", "overwrite")
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        seen: set[str] = set()
        for request in job.body["contacts"]:
            code, description = self._contact_problem(request, seen)
            if code:
                failures.append(
                    {
                        "matchIdentifier": request["matchIdentifier"],
                        "identifiers": request["identifiers"],
                        "failures": [{"failureCode": code, "description": description}],
                    }
                )
                continue
            email = request["identifiers"]["email"]
            seen.add(email.lower())
            data_fields = request.get("dataFields") or {}
            contact, is_new = self._upsert_contact(email, data_fields, option, request)
            reference = {"contactId": contact.contact_id, "identifiers": {"email": contact.email}}
            (created if is_new else updated).append(reference)
        return {
            "importId": job.import_id,
            "status": "Finished",
            "summary": {
                "newContacts": len(created),
                "updatedContacts": len(updated),
                "globallySuppressed": 0,
                "invalidEntries": sum(
                    1 for f in failures if f["failures"][0]["failureCode"] == "invalidEmail"
                ),
                "duplicateIdentifiers": sum(
                    1 for f in failures if f["failures"][0]["failureCode"] == "duplicateIdentifier"
                ),
            },
            "created": created,
            "updated": updated,
            "failures": failures,
        }

    def _contact_problem(self, request: dict[str, Any], seen: set[str]) -> tuple[str, str]:
        if request["matchIdentifier"] != "email":
            return "unsupportedMatchIdentifier", "The fake matches contacts by e-mail only"
        email = request["identifiers"].get("email")
        if not isinstance(email, str) or not _EMAIL.match(email):
            return "invalidEmail", "Invalid value for 'email'"
        if email.lower() in self.refuse_contacts:
            return self.refuse_contacts[email.lower()]
        if email.lower() in seen:
            return "duplicateIdentifier", f"Duplicate identifier detected for email '{email}'"
        return "", ""


def _sequence_of(item: tuple[int, RecordSlot]) -> int:
    return item[0]


def _marker(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"after:{sequence}".encode()).decode()


def _marker_sequence(marker: str) -> int:
    """The sequence a page's marker starts after (0: the first page)."""
    if not marker:
        return 0
    try:
        text = base64.urlsafe_b64decode(marker.encode()).decode()
        return int(text.removeprefix("after:"))
    except ValueError as error:
        raise Refusal(400, "insightData:invalidMarker", "The marker is not valid") from error


def _page_link(collection: str, limit: int, marker: str) -> dict[str, str]:
    query = f"limit={limit}" + (f"&marker={marker}" if marker else "")
    return {"marker": marker, "link": f"/insightData/v3/contacts/{collection}?{query}"}


def _failure_entry(
    record: dict[str, Any], scope: str, reason: str, details: list[str]
) -> dict[str, Any]:
    owner: dict[str, Any] = {"ownerType": scope}
    if isinstance(record.get("contactIdentity"), dict):
        owner["contactIdentity"] = record["contactIdentity"]
    return {
        "collectionOwner": owner,
        "failureReason": reason,
        "details": details,
        "key": record["key"],
        "json": record["json"],
    }


def _template_pattern(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(pattern)


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A loopback Dotdigital for order-export.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--user", default="demo", help="the API user to accept")
    parser.add_argument("--password", default="demo", help="the password to accept")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="time each request takes")
    parser.add_argument(
        "--fail-rate", type=float, default=0.0, help="share of requests failing 5xx"
    )
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of connections dropped")
    parser.add_argument(
        "--burst-every", type=int, default=0, help="a burst of 429s every N requests"
    )
    parser.add_argument("--import-ms", type=float, default=20.0, help="time an import takes")
    parser.add_argument(
        "--import-ms-per-record", type=float, default=0.0, help="and this much more per record"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    args = parser.parse_args(argv)
    missing = [name for name in (INSIGHT_SPEC, CONTACTS_SPEC) if not (SPECS_DIR / name).exists()]
    if missing:
        sys.exit(f"the fake is built from the official specs; not found in {SPECS_DIR}: {missing}")
    faults = Faults(
        fail_rate=args.fail_rate,
        drop_rate=args.drop_rate,
        burst_every=args.burst_every,
        latency=args.latency_ms / 1000,
        seed=args.seed,
    )
    fake = FakeDotdigital(
        args.user,
        args.password,
        host=args.host,
        port=args.port,
        faults=faults,
        import_seconds=args.import_ms / 1000,
        import_seconds_per_record=args.import_ms_per_record / 1000,
    )
    with fake, contextlib.suppress(KeyboardInterrupt):
        print(f"Fake Dotdigital listening on {fake.url} (API user {args.user!r})", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
