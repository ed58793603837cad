"""The Dotdigital destination: orders as contact-scoped Insight data (interfaces.md §5).

A batch travels as bulk imports, never one request per order: when `create_missing_contacts`
is on, a bulk contacts import for the e-mail addresses not ensured yet this run (batches in
flight together share one: `rounds.Rounds`), then one `PUT /insightData/v3/import`. An import
is polled until done, paced by its size and this run's earlier imports
(`dotdigital_pacing`), for at most `dotdigital.import_timeout_seconds`; a cancel ends the wait
at once (the batch is recorded nowhere and sent again next time). Each failure in an import's
report becomes a rejection of its order, with the platform's reason, and the report's summary
must account for every other record: those it does not are rejected too, with that reason. A
single order (real time, a status update) is one synchronous upsert of its record. At most five
imports run at once, contacts and Insight data together, as Dotdigital allows.

Only the documented success counts: its status code and a body as the spec says (an import
id, a report with a status, no body or JSON for the single-record PUT). A web page, an empty
or unreadable body, JSON of another shape or a 2xx the spec does not list is a transient
failure, like an answer that never came.

What fails what:
- transport errors, 429, 5xx and the flat-rate limit's `ERROR_APIUSAGE_EXCEEDED` are
  transient: the engine's retrier tries the request again;
- an import that ends `Failed` is submitted again, as a retry of the bulk import;
- 401 and 403 fail the run at once (a `DestinationError` naming the settings to check), and
  stop every other request of this destination, so bad credentials never cause a storm;
- any other 4xx fails a bulk import (`DestinationError` with Dotdigital's error code), and
  rejects a single order (its reason is returned).
Nothing secret reaches a message: the password is named by its variable, never shown, and
Dotdigital's own text is redacted (`transport.redaction`) before it is kept.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from order_export_tui.destinations.base import DestinationError, OrderChange
from order_export_tui.destinations.dotdigital_pacing import ImportPacer
from order_export_tui.destinations.dotdigital_records import (
    IMPORT_PATH,
    bulk_import_body,
    contact_update_body,
    contacts_import_body,
    order_record_json,
    single_record_path,
)
from order_export_tui.destinations.rounds import Rounds
from order_export_tui.orders import OrderDocument
from order_export_tui.settings import Settings, secret_value
from order_export_tui.transport.answers import (
    expect_no_body_or_json,
    expect_status,
    not_the_platform,
    read_json,
    read_json_list,
    read_json_object,
)
from order_export_tui.transport.http import (
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    display_url,
    request_timeout,
    retry_after_seconds,
    send,
)
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import (
    Retrier,
    RetriesExhaustedError,
    RetryPolicy,
    TransientError,
)
from order_export_tui.transport.waiting import interruptible

log = logging.getLogger("order_export.dotdigital")

COLLECTIONS_PATH = "/insightData/v3/collections"
CONTACTS_PATH = "/contacts/v3"
CONTACTS_IMPORT_PATH = "/contacts/v3/import"
COLLECTION_SCOPE = "contact"
COLLECTION_TYPE = "orders"

MAX_CONCURRENT_IMPORTS = 5  # Dotdigital runs at most five imports at once per account
IMPORT_TIMEOUT_SECONDS = 900.0  # dotdigital.import_timeout_seconds
# Contacts imports running at once; batches arriving meanwhile share the next one. Two keep
# the batches flowing (one import being polled while the next is submitted) at few requests.
CONTACT_IMPORTS_AT_ONCE = 2
USAGE_EXCEEDED = "ERROR_APIUSAGE_EXCEEDED"
COLLECTION_NAME = re.compile(r"^[-A-Za-z_][-A-Za-z0-9_]{1,255}$")
_JSON_HEADERS = {"Content-Type": "application/json"}
_MAX_REASON_TEXT = 300
Check = Callable[[httpx.Response, str], None]  # raises TransientError: not the documented answer


@dataclass(frozen=True, slots=True)
class ImportKind:
    """One of Dotdigital's asynchronous imports: where it goes and what its statuses mean.

    `Failed` means submit again; any other status (`NotStarted`, `Processing`,
    `NotFinished`, or one Dotdigital adds later) is waited on, up to the deadline.
    """

    key: str
    what: str
    submit_path: str
    done: frozenset[str]
    account_refused: frozenset[str]

    def status_path(self, import_id: str) -> str:
        return f"{self.submit_path}/{quote(import_id, safe='')}"


# The spec's example says `Finished`, its enum says `Complete`: either one is done.
INSIGHT_IMPORT = ImportKind(
    key="insight",
    what="Insight data import",
    submit_path=IMPORT_PATH,
    done=frozenset({"Finished", "Complete"}),
    account_refused=frozenset(),
)
CONTACTS_IMPORT = ImportKind(
    key="contacts",
    what="contacts import",
    submit_path=CONTACTS_IMPORT_PATH,
    done=frozenset({"Finished"}),
    account_refused=frozenset({"RejectedByWatchdog", "ExceedsAllowedContactLimit"}),
)


class DotdigitalDestination:
    """Sends orders to one Dotdigital account. Safe under concurrent `send_batch` calls."""

    name = "dotdigital"
    max_batches_in_flight = MAX_CONCURRENT_IMPORTS

    def __init__(
        self,
        *,
        base_url: str,
        api_user: str,
        password_env: str,
        collection: str,
        store_name: str,
        create_missing_contacts: bool = True,
        contact_list_id: int = 0,
        region: str = "r1",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        import_timeout: float = IMPORT_TIMEOUT_SECONDS,
        request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        pacer: ImportPacer | None = None,
        share_contact_imports: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_user = api_user
        self.password_env = password_env
        self.collection = collection
        self.store_name = store_name
        self.create_missing_contacts = create_missing_contacts
        self.contact_list_id = contact_list_id  # 0: contacts created for orders join no list
        self.region = region
        self.import_timeout = import_timeout
        self.request_timeout_seconds = request_timeout_seconds
        self.share_contact_imports = share_contact_imports
        self._sleep = sleep
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._refusal: str | None = None  # set by a 401/403: no further request is made
        self._checked = False
        self._collection_exists = False
        self._ensured_contacts: set[str] = set()  # lower-cased e-mails known to exist
        self._check_lock = asyncio.Lock()
        self._collection_lock = asyncio.Lock()
        # One budget for both kinds of import: right whether Dotdigital counts them together
        # or apart, and no slower, as each batch runs one import at a time.
        self._import_slots = asyncio.Semaphore(MAX_CONCURRENT_IMPORTS)
        self._pacer = pacer or ImportPacer()
        self._contact_rounds: Rounds[str, dict[str, Any], dict[str, str]] = Rounds(
            CONTACT_IMPORTS_AT_ONCE
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> DotdigitalDestination:
        dotdigital = settings.dotdigital
        return cls(
            base_url=dotdigital.base_url or f"https://{dotdigital.region}-api.dotdigital.com",
            api_user=dotdigital.api_user,
            password_env=dotdigital.password_env,
            collection=dotdigital.collection,
            store_name=settings.webstore.name,
            create_missing_contacts=dotdigital.create_missing_contacts,
            contact_list_id=dotdigital.contact_list_id,
            region=dotdigital.region,
            import_timeout=dotdigital.import_timeout_seconds,
            request_timeout_seconds=settings.task.request_timeout_seconds,
        )

    # --- the protocol ---------------------------------------------------------------------

    async def open(self, *, backfill: bool = False) -> None:
        if self._client is not None:
            return
        password = secret_value(self.password_env)
        if password is None:
            raise DestinationError(
                f"dotdigital.password_env: environment variable {self.password_env} is not set"
            )
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            auth=httpx.BasicAuth(self.api_user, password),
            timeout=request_timeout(self.request_timeout_seconds),
            limits=httpx.Limits(
                max_connections=4 * MAX_CONCURRENT_IMPORTS,
                max_keepalive_connections=4 * MAX_CONCURRENT_IMPORTS,
            ),
            headers={"Accept": "application/json"},
        )

    async def send_batch(self, changes: Sequence[OrderChange], retrier: Retrier) -> dict[str, str]:
        await self._check_account(retrier)
        docs = [change.document for change in changes]
        contact_problems: dict[str, str] = {}
        if self.create_missing_contacts:
            contact_problems = await self._ensure_contacts(docs, retrier)
        return await self._import_orders(docs, retrier, contact_problems)

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        await self._check_account(retrier)
        await self._ensure_collection(retrier)
        doc = change.document
        if self.create_missing_contacts:
            problem = await self._ensure_contact(doc, retrier)
            if problem is not None:
                return problem
        return await self._upsert_record(doc, retrier)

    async def check_connection(self) -> str:
        if not COLLECTION_NAME.match(self.collection):
            raise DestinationError(
                f"dotdigital.collection: {self.collection!r} is not a valid Insight data"
                " collection name (2 to 256 letters, digits, '-' or '_', not starting with a"
                " digit)"
            )
        await self.open()
        try:
            await self._check_account(Retrier(RetryPolicy(max_retries=0, window_seconds=0)))
        except RetriesExhaustedError as error:
            raise DestinationError(
                redact(
                    f"cannot reach Dotdigital at {display_url(self.base_url)}: {error.last_error}"
                )
            ) from error
        # The specs hold no account-info call: the API user and the collection name it.
        collection = "exists" if self._collection_exists else "created by the first export"
        return (
            f"Dotdigital at {display_url(self.base_url)} as API user {self.api_user},"
            f" Insight data collection {self.collection} ({collection})"
        )

    async def close(self) -> None:
        await self._contact_rounds.close()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # --- the account and the collection ---------------------------------------------------

    async def _check_account(self, retrier: Retrier) -> None:
        """Once per destination: prove the credentials with one cheap call before anything
        else, so a wrong password costs one request however many batches are in flight."""
        self._raise_if_refused()
        if self._checked:
            return
        async with self._check_lock:
            if self._checked:
                return
            response = await self._call(
                retrier,
                "GET Insight data collections",
                "GET",
                COLLECTIONS_PATH,
                documented=(200,),
                check=_json_list,
            )
            if response.status_code != 200:
                raise DestinationError(
                    f"Dotdigital cannot list Insight data collections: {platform_error(response)}"
                )
            try:
                self._collection_exists = self._collection_found(_json(response))
            except DestinationError as error:
                self._refusal = str(error)  # settings to fix: nothing else is worth sending
                raise
            self._checked = True

    def _collection_found(self, collections: Any) -> bool:
        """Whether the configured collection exists; an existing one must hold contact orders."""
        if not isinstance(collections, list):
            return False
        for summary in collections:
            if not isinstance(summary, dict):
                continue
            if str(summary.get("collectionName", "")).lower() != self.collection.lower():
                continue
            scope = summary.get("collectionScope", COLLECTION_SCOPE)
            kind = summary.get("collectionType")
            if scope != COLLECTION_SCOPE or kind != COLLECTION_TYPE:
                raise DestinationError(
                    f"dotdigital.collection: {self.collection!r} already exists in Dotdigital"
                    f" as {scope}-scoped {kind!r} data, not contact-scoped orders;"
                    " name another collection"
                )
            return True
        return False

    async def _ensure_collection(self, retrier: Retrier) -> None:
        """Create the collection before the first single-record upsert (once)."""
        if self._collection_exists:
            return
        async with self._collection_lock:
            if self._collection_exists:
                return
            path = f"{COLLECTIONS_PATH}/{quote(self.collection, safe='')}"
            params = {"collectionScope": COLLECTION_SCOPE, "collectionType": COLLECTION_TYPE}
            response = await self._call(
                retrier,
                "POST Insight data collection",
                "POST",
                path,
                params=params,
                documented=(200, 201),
                check=expect_no_body_or_json,
            )
            if response.status_code not in (200, 201):  # 200: it existed already
                raise DestinationError(
                    f"Dotdigital cannot create the collection {self.collection!r}"
                    f" (dotdigital.collection): {platform_error(response)}"
                )
            self._collection_exists = True

    # --- contacts -------------------------------------------------------------------------

    async def _ensure_contacts(
        self, docs: Sequence[OrderDocument], retrier: Retrier
    ) -> dict[str, str]:
        """One bulk contacts import for the e-mails not ensured yet. Returns what Dotdigital
        said about the contacts it did not take (lower-cased e-mail -> why); their orders still
        go to the Insight import, which has the last word on whether the contact exists."""
        wanted = self._contacts_to_ensure(docs)
        if not wanted:
            return {}

        async def import_contacts(customers: dict[str, dict[str, Any]]) -> dict[str, str]:
            body = contacts_import_body(list(customers.values()), list_id=self.contact_list_id)
            report = await self._run_import(
                CONTACTS_IMPORT, orjson.dumps(body), len(customers), retrier
            )
            problems = contact_failures(report)
            self._ensured_contacts.update(email for email in customers if email not in problems)
            return problems

        if not self.share_contact_imports:
            return await import_contacts(wanted)
        problems = await self._contact_rounds.join(wanted, import_contacts)
        return {email: why for email, why in problems.items() if email in wanted}

    def _contacts_to_ensure(self, docs: Sequence[OrderDocument]) -> dict[str, dict[str, Any]]:
        """Lower-cased e-mail -> the order's customer, for contacts not ensured this run."""
        wanted: dict[str, dict[str, Any]] = {}
        for doc in docs:
            customer = doc["customer"]
            email = customer["email"].lower()
            if email not in self._ensured_contacts and email not in wanted:
                wanted[email] = customer
        return wanted

    async def _ensure_contact(self, doc: OrderDocument, retrier: Retrier) -> str | None:
        """Upsert one contact (a synchronous call, for real time); None when it exists."""
        customer = doc["customer"]
        email = customer["email"].lower()
        if email in self._ensured_contacts:
            return None
        path = f"{CONTACTS_PATH}/email/{quote(customer['email'], safe='@')}"
        body = orjson.dumps(contact_update_body(customer, list_id=self.contact_list_id))
        response = await self._call(
            retrier,
            "PATCH contact",
            "PATCH",
            path,
            content=body,
            params={"merge-option": "overwrite-if-empty"},
            documented=(200, 201),
            check=_contact_answer,
        )
        if response.status_code in (200, 201):
            self._ensured_contacts.add(email)
            return None
        return f"the contact could not be created: {platform_error(response)}"

    # --- Insight data ---------------------------------------------------------------------

    async def _import_orders(
        self, docs: Sequence[OrderDocument], retrier: Retrier, contact_problems: dict[str, str]
    ) -> dict[str, str]:
        """One bulk Insight import; each failure in its report rejects its order."""
        body = bulk_import_body(list(docs), collection=self.collection, store_name=self.store_name)
        report = await self._run_import(INSIGHT_IMPORT, orjson.dumps(body), len(docs), retrier)
        self._collection_exists = True  # a bulk import creates a missing collection
        emails = {doc["order_id"]: doc["customer"]["email"].lower() for doc in docs}
        rejected: dict[str, str] = {}
        for failure in _dicts(report.get("failures")):
            key = str(failure.get("key", ""))
            if key not in emails:
                log.warning("Dotdigital reported a failure for an unknown record key %r", key)
                continue
            reason = record_failure_reason(failure)
            if failure.get("failureReason") == "ContactEmailDoesNotExist":
                self._ensured_contacts.discard(emails[key])  # deleted meanwhile, perhaps
                if emails[key] in contact_problems:
                    reason += f" ({contact_problems[emails[key]]})"
            rejected[key] = redact(reason)
        gap = unaccounted_records(report, len(emails), len(rejected))
        if gap is not None:
            log.warning("%s", gap)
            rejected.update((key, gap) for key in emails if key not in rejected)
        return rejected

    async def _upsert_record(self, doc: OrderDocument, retrier: Retrier) -> str | None:
        body = orjson.dumps(order_record_json(doc, self.store_name))
        path = single_record_path(doc, self.collection)
        response = await self._call(
            retrier,
            "PUT Insight data record",
            "PUT",
            path,
            content=body,
            documented=(201, 204),
            check=expect_no_body_or_json,
        )
        if response.status_code in (201, 204):
            return None
        code = error_code(response)
        if code == "insightData:collectionNotFound":
            self._collection_exists = False  # deleted meanwhile: created again next time
        elif code == "insightData:contactNotFound":
            self._ensured_contacts.discard(doc["customer"]["email"].lower())
        return platform_error(response)

    # --- asynchronous imports -------------------------------------------------------------

    async def _run_import(
        self, kind: ImportKind, body: bytes, records: int, retrier: Retrier
    ) -> dict[str, Any]:
        """Submit an import and wait for its report. At most five run at once; one that ends
        `Failed` is submitted again, counted as a retry of the bulk import."""
        async with self._import_slots:
            return await retrier.call(
                f"Dotdigital {kind.what}",
                lambda: self._submit_and_wait(kind, body, records, retrier),
            )

    async def _submit_and_wait(
        self, kind: ImportKind, body: bytes, records: int, retrier: Retrier
    ) -> dict[str, Any]:
        response = await self._call(
            retrier,
            f"PUT {kind.submit_path}",
            "PUT",
            kind.submit_path,
            content=body,
            documented=(202,),
            check=_import_id_answer,
        )
        if response.status_code != 202:
            raise DestinationError(
                f"Dotdigital refused the {kind.what}: {platform_error(response)}"
            )
        import_id = _json(response)["importId"]
        log.debug("Dotdigital %s %s submitted (%d records)", kind.what, import_id, records)
        return await self._wait_for(kind, import_id, records, retrier)

    async def _wait_for(
        self, kind: ImportKind, import_id: str, records: int, retrier: Retrier
    ) -> dict[str, Any]:
        """Poll the import's status, paced by its size (`ImportPacer`), for at most
        `import_timeout` seconds. Only waiting: a cancel ends it at once."""
        started = self._clock()
        delay = self._pacer.first_wait(kind.key, records)
        running_at = 0.0
        while True:
            left = self.import_timeout - (self._clock() - started)
            await interruptible(
                self._sleep(max(0.0, min(delay, left))),
                retrier.interrupt,
                f"waiting for Dotdigital {kind.what} {import_id}",
            )
            looked_at = self._clock() - started  # when it was asked, not answered
            report = await self._import_status(kind, import_id, retrier)
            status = report["status"]
            waited = self._clock() - started
            if status in kind.done:
                self._pacer.learn(kind.key, records, running_at, looked_at)
                return report
            running_at = looked_at
            self._pacer.still_running(kind.key, records, running_at)
            if status in kind.account_refused:
                raise DestinationError(
                    f"Dotdigital refused the {kind.what} {import_id}: {status}"
                    f"{describe_summary(report)}"
                )
            if status == "Failed":
                raise TransientError(f"Dotdigital {kind.what} {import_id} failed")
            if waited >= self.import_timeout:
                raise DestinationError(
                    f"Dotdigital {kind.what} {import_id} is still {status!r} after"
                    f" {self.import_timeout:g}s (dotdigital.import_timeout_seconds); the batch"
                    " is sent again by the next run"
                )
            delay = self._pacer.next_wait(kind.key, records, waited)

    async def _import_status(
        self, kind: ImportKind, import_id: str, retrier: Retrier
    ) -> dict[str, Any]:
        response = await self._call(
            retrier,
            f"GET {kind.what} status",
            "GET",
            kind.status_path(import_id),
            documented=(200,),
            check=_import_report,
        )
        if response.status_code == 404:  # lost by the platform: submitting again is safe
            raise TransientError(f"Dotdigital does not know {kind.what} {import_id}")
        if response.status_code != 200:
            raise DestinationError(
                f"Dotdigital cannot report on {kind.what} {import_id}: {platform_error(response)}"
            )
        return _json(response)

    # --- requests -------------------------------------------------------------------------

    async def _call(
        self,
        retrier: Retrier,
        what: str,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        documented: Collection[int],
        check: Check,
    ) -> httpx.Response:
        """One request under the retry policy; what comes back is neither transient nor a
        refusal of the credentials, and is for the caller to judge. A 2xx is one of the
        `documented` statuses and passed `check`; any other answer carries Dotdigital's JSON."""
        client = self._require_client()
        request = client.build_request(
            method,
            path,
            content=content,
            params=params,
            headers=_JSON_HEADERS if content is not None else None,
        )
        return await retrier.call(
            what, lambda: self._attempt(client, request, f"Dotdigital {what}", documented, check)
        )

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        what: str,
        documented: Collection[int],
        check: Check,
    ) -> httpx.Response:
        self._raise_if_refused()
        response = await send(client, request, what)
        status = response.status_code
        if 400 <= status < 500 and USAGE_EXCEEDED in response.text:
            raise TransientError(
                f"{what}: the API user's hourly call limit is used up ({USAGE_EXCEEDED})",
                retry_after=retry_after_seconds(response.headers),
            )
        if status in (401, 403):
            self._refusal = self._refusal_message(response)
            self._raise_if_refused()
        if 200 <= status < 300:
            expect_status(response, what, documented)
            check(response, what)
        elif not isinstance(read_json(response, what), dict):
            raise not_the_platform(response, what, "not Dotdigital's error document")
        return response

    def _refusal_message(self, response: httpx.Response) -> str:
        if response.status_code == 401:
            return (
                f"Dotdigital did not accept the API user {self.api_user!r} with the password in"
                f" the environment variable {self.password_env} (HTTP 401): check"
                " dotdigital.api_user and that variable (dotdigital.password_env)"
            )
        check = f"dotdigital.region (now {self.region!r})"
        if self._custom_base_url():
            check = f"dotdigital.base_url (now {self.base_url}) and {check}"
        return (
            f"Dotdigital refused access ({platform_error(response)}): the account probably"
            f" lives in another region, or the API user may not use this API; check {check}"
        )

    def _custom_base_url(self) -> bool:
        return self.base_url != f"https://{self.region}-api.dotdigital.com"

    def _raise_if_refused(self) -> None:
        if self._refusal is not None:
            raise DestinationError(self._refusal)

    def _require_client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise DestinationError("the Dotdigital destination is not open")
        return self._client


# --- request bodies and report readers (pure functions) -------------------------------------


def contact_failures(report: dict[str, Any]) -> dict[str, str]:
    """Lower-cased e-mail -> why a contacts import did not create or update that contact."""
    refused: dict[str, str] = {}
    for failure in _dicts(report.get("failures")):
        identifiers = failure.get("identifiers")
        email = identifiers.get("email") if isinstance(identifiers, dict) else None
        if not isinstance(email, str):
            continue
        reasons = [_failure_text(item) for item in _dicts(failure.get("failures"))]
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
    body = _json(response)
    code = body.get("errorCode") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def platform_error(response: httpx.Response) -> str:
    """Dotdigital's `{errorCode, description, details[]}` as one line, else the status;
    redacted, as a server may echo the request's credentials."""
    body = _json(response)
    if not isinstance(body, dict) or "errorCode" not in body:
        text = response.text.strip()[:_MAX_REASON_TEXT]
        return redact(f"HTTP {response.status_code}" + (f" {text}" if text else ""))
    message = f"HTTP {response.status_code} {body['errorCode']}: {body.get('description', '')}"
    details = [
        f"{item.get('item', '')}: {item.get('description', '')}"
        for item in _dicts(body.get("details"))
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


def _json(response: httpx.Response) -> Any:
    """The body as JSON; {} when it is none (bounded: never a RecursionError)."""
    try:
        return orjson.loads(response.content)
    except (orjson.JSONDecodeError, RecursionError):
        return {}


# --- what a documented success looks like, per request --------------------------------------


def _json_list(response: httpx.Response, what: str) -> None:
    read_json_list(response, what)


def _import_id_answer(response: httpx.Response, what: str) -> None:
    body = read_json_object(response, what, required={"importId": str})
    if not body["importId"]:
        raise not_the_platform(response, what, "the import id is empty")


def _import_report(response: httpx.Response, what: str) -> None:
    read_json_object(response, what, required={"importId": str, "status": str})


def _contact_answer(response: httpx.Response, what: str) -> None:
    read_json_object(response, what)


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON array (nothing when it is not one)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _texts(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []
