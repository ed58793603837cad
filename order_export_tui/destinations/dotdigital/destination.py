"""The Dotdigital destination: orders as contact-scoped Insight data (interfaces.md §5).

A batch travels as bulk imports, never one request per order: when `create_missing_contacts`
is on, a bulk contacts import for the e-mail addresses not ensured yet this run (batches in
flight together share one: `rounds.Rounds`), then one `PUT /insightData/v3/import`. An import
is polled until done (`imports`, paced by `pacing`), for at most
`dotdigital.import_timeout_seconds`; a cancel ends the wait at once (the batch is recorded
nowhere and sent again next time). Each failure in an import's report becomes a rejection of
its order, with the platform's reason, and the report's summary must account for every other
record: those it does not are rejected too, with that reason (`answers`). A single
order (real time, a status update) is one synchronous upsert of its record. At most five
imports run at once, contacts and Insight data together, as Dotdigital allows.

An order moved to another customer (its e-mail changed in the ERP: `OrderChange.moved_from`),
or that a verify found under another contact too (`OrderChange.held_under`: a copy the state
never knew of), is sent under the new contact first, then its record under each old contact
is deleted (`DELETE .../contacts/email/{old}/{collection}/{orderId}`, 204; a 404 means it is
gone already). In that order the platform never lacks the order, and a new contact that
Dotdigital refuses leaves the old record where it was; the engine records the move only when
both steps are confirmed, so a crash between them repeats both next time, harmlessly.

Only the documented success counts: its status code and a body as the spec says (an import
id, a report with a status, no body or JSON for the single-record PUT). A web page, an empty
or unreadable body, JSON of another shape or a 2xx the spec does not list is a transient
failure, like an answer that never came.

What fails what:
- transport errors, 429, 5xx and the flat-rate limit's `ERROR_APIUSAGE_EXCEEDED` are
  transient: the engine's retrier tries the request again;
- an import that ends `Failed` is submitted again, as a retry of the bulk import;
- 401 and 403 fail the run at once (a `DestinationError` naming the settings to check), and
  stop every other request of this destination, so bad credentials never cause a storm
  (`api`);
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
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson

from order_export_tui.destinations.base import DestinationError, OrderChange
from order_export_tui.destinations.dotdigital.answers import (
    COLLECTION_SCOPE,
    COLLECTION_TYPE,
    collection_found,
    contact_answer,
    contact_failures,
    dicts,
    error_code,
    import_id_answer,
    import_report,
    json_body,
    json_list,
    platform_error,
    record_failure_reason,
    unaccounted_records,
)
from order_export_tui.destinations.dotdigital.api import Account, DotdigitalApi
from order_export_tui.destinations.dotdigital.imports import (
    CONTACTS_IMPORT,
    IMPORT_TIMEOUT_SECONDS,
    INSIGHT_IMPORT,
    MAX_CONCURRENT_IMPORTS,
    ImportKind,
    wait_for_import,
)
from order_export_tui.destinations.dotdigital.pacing import ImportPacer
from order_export_tui.destinations.dotdigital.readback import read_dotdigital_copy
from order_export_tui.destinations.dotdigital.records import (
    bulk_import_body,
    contact_update_body,
    contacts_import_body,
    order_record_json,
    record_path,
    single_record_path,
)
from order_export_tui.destinations.readback import PlatformOrder
from order_export_tui.destinations.readback_spill import SortedSpill
from order_export_tui.destinations.rounds import Rounds
from order_export_tui.orders import OrderDocument
from order_export_tui.settings import Settings
from order_export_tui.transport.answers import expect_no_body_or_json
from order_export_tui.transport.http import DEFAULT_REQUEST_TIMEOUT_SECONDS, display_url
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import (
    Retrier,
    RetriesExhaustedError,
    RetryPolicy,
    TransientError,
)

log = logging.getLogger("order_export.dotdigital")

COLLECTIONS_PATH = "/insightData/v3/collections"
CONTACTS_PATH = "/contacts/v3"

# Contacts imports running at once; batches arriving meanwhile share the next one. Two keep
# the batches flowing (one import being polled while the next is submitted) at few requests.
CONTACT_IMPORTS_AT_ONCE = 2
COLLECTION_NAME = re.compile(r"^[-A-Za-z_][-A-Za-z0-9_]{1,255}$")


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
        account = Account(self.base_url, api_user, password_env, region, request_timeout_seconds)
        self._api = DotdigitalApi(account, connections=4 * MAX_CONCURRENT_IMPORTS)

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
        self._api.open()

    async def send_batch(self, changes: Sequence[OrderChange], retrier: Retrier) -> dict[str, str]:
        await self._check_account(retrier)
        docs = [change.document for change in changes]
        contact_problems: dict[str, str] = {}
        if self.create_missing_contacts:
            contact_problems = await self._ensure_contacts(docs, retrier)
        rejected = await self._import_orders(docs, retrier, contact_problems)
        moves = [
            (change.order_id, old)
            for change in changes
            if change.order_id not in rejected
            for old in change.remove_from
        ]
        refusals = await asyncio.gather(
            *(self._delete_record(old, order_id, retrier) for order_id, old in moves)
        )
        for (order_id, _), refusal in zip(moves, refusals, strict=True):
            if refusal is not None:
                rejected.setdefault(order_id, refusal)
        return rejected

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        await self._check_account(retrier)
        await self._ensure_collection(retrier)
        doc = change.document
        if self.create_missing_contacts:
            problem = await self._ensure_contact(doc, retrier)
            if problem is not None:
                return problem
        refusal = await self._upsert_record(doc, retrier)
        for old in change.remove_from:
            if refusal is None:
                refusal = await self._delete_record(old, doc["order_id"], retrier)
        return refusal

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

    async def read_back(self, since: datetime, retrier: Retrier) -> SortedSpill[PlatformOrder]:
        """The collection's orders dated from `since`, sorted by order id, in a spill the
        caller closes (interfaces.md §8; `dotdigital.readback`)."""
        self._api.open()
        return await read_dotdigital_copy(self._api, self.collection, since, retrier)

    async def close(self) -> None:
        await self._contact_rounds.close()
        await self._api.close()

    # --- the account and the collection ---------------------------------------------------

    async def _check_account(self, retrier: Retrier) -> None:
        """Once per destination: prove the credentials with one cheap call before anything
        else, so a wrong password costs one request however many batches are in flight."""
        self._api.raise_if_refused()
        if self._checked:
            return
        async with self._check_lock:
            if self._checked:
                return
            response = await self._api.call(
                retrier,
                "GET Insight data collections",
                "GET",
                COLLECTIONS_PATH,
                documented=(200,),
                check=json_list,
            )
            if response.status_code != 200:
                raise DestinationError(
                    f"Dotdigital cannot list Insight data collections: {platform_error(response)}"
                )
            try:
                self._collection_exists = collection_found(json_body(response), self.collection)
            except DestinationError as error:
                self._api.refuse(str(error))  # settings to fix: nothing else is worth sending
                raise
            self._checked = True

    async def _ensure_collection(self, retrier: Retrier) -> None:
        """Create the collection before the first single-record upsert (once)."""
        if self._collection_exists:
            return
        async with self._collection_lock:
            if self._collection_exists:
                return
            path = f"{COLLECTIONS_PATH}/{quote(self.collection, safe='')}"
            params = {"collectionScope": COLLECTION_SCOPE, "collectionType": COLLECTION_TYPE}
            response = await self._api.call(
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
        response = await self._api.call(
            retrier,
            "PATCH contact",
            "PATCH",
            path,
            content=body,
            params={"merge-option": "overwrite-if-empty"},
            documented=(200, 201),
            check=contact_answer,
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
        for failure in dicts(report.get("failures")):
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
        response = await self._api.call(
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

    async def _delete_record(self, email: str, order_id: str, retrier: Retrier) -> str | None:
        """Delete the order's record under a contact it no longer belongs to; None once it is
        gone (a 404: the record, the contact or the collection is not there)."""
        response = await self._api.call(
            retrier,
            "DELETE Insight data record",
            "DELETE",
            record_path(email, self.collection, order_id),
            documented=(204,),
            check=expect_no_body_or_json,
        )
        if response.status_code in (204, 404):
            return None
        why = platform_error(response)
        return f"its record under the previous e-mail could not be deleted: {why}"

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
        response = await self._api.call(
            retrier,
            f"PUT {kind.submit_path}",
            "PUT",
            kind.submit_path,
            content=body,
            documented=(202,),
            check=import_id_answer,
        )
        if response.status_code != 202:
            raise DestinationError(
                f"Dotdigital refused the {kind.what}: {platform_error(response)}"
            )
        import_id = json_body(response)["importId"]
        log.debug("Dotdigital %s %s submitted (%d records)", kind.what, import_id, records)
        return await wait_for_import(
            kind,
            import_id,
            records,
            retrier,
            status_of=self._import_status,
            pacer=self._pacer,
            timeout=self.import_timeout,
            clock=self._clock,
            sleep=self._sleep,
        )

    async def _import_status(
        self, kind: ImportKind, import_id: str, retrier: Retrier
    ) -> dict[str, Any]:
        response = await self._api.call(
            retrier,
            f"GET {kind.what} status",
            "GET",
            kind.status_path(import_id),
            documented=(200,),
            check=import_report,
        )
        if response.status_code == 404:  # lost by the platform: submitting again is safe
            raise TransientError(f"Dotdigital does not know {kind.what} {import_id}")
        if response.status_code != 200:
            raise DestinationError(
                f"Dotdigital cannot report on {kind.what} {import_id}: {platform_error(response)}"
            )
        return json_body(response)
