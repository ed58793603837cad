"""One run's batches: classify each, send up to N at once, record them in the order read."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from order_export_tui.destinations.base import Destination, OrderChange
from order_export_tui.engine.events import (
    REFUSED,
    SENT,
    UNCHANGED,
    BatchFinished,
    BatchStarted,
    EngineEvent,
    ItemSkipped,
    OrderResult,
    RunCounts,
)
from order_export_tui.orders import (
    OrderDocument,
    content_hash_and_json,
    known_hash,
    order_problem,
)
from order_export_tui.state import ExportedOrder, StateStore
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import Retrier

ERP_TAKEN_BACK = frozenset({"refunded", "partially_refunded", "cancelled"})


_RUN_SIZE = 1 << 14  # ids hashed before they are sorted into a run
_SORTED_MERGE_LIMIT = 1 << 16  # runs merged by sorting: at most ~3 MB of list held meanwhile


class ReadIds:
    """The ids of every order a run read, for `StateStore.forget_unread` (which only asks
    whether an id was read): kept as 64-bit string hashes in arrays, 8 bytes an id where a
    set of the strings takes ~100 (a million-order run held 100 MB that way). Two ids with
    one hash (odds ~1e-8 in a million-order run) keep an unread order from being forgotten
    this run: the harmless side. Hashes are appended as they come (in C) and each
    `run_size` of them sorted into a run; runs are merged as they grow, sizes doubling, so
    an add costs O(log n) amortised and a lookup a binary search in each of O(log n) runs.
    (Each batch sorted into a run of its own cost ~0.7 us an id, this ~0.5, and 1 MB less
    at 100,000 ids.)"""

    __slots__ = ("_fresh", "_run_size", "_runs")

    def __init__(self, run_size: int = _RUN_SIZE) -> None:
        self._runs: list[array[int]] = []
        self._fresh: array[int] = array("q")  # hashed, not sorted yet
        self._run_size = max(1, run_size)

    def update(self, order_ids: Iterable[str]) -> None:
        self._fresh.extend(map(hash, order_ids))
        if len(self._fresh) >= self._run_size:
            self._sort_fresh()

    def _sort_fresh(self) -> None:
        run = array("q", sorted(self._fresh))
        self._fresh = array("q")
        while self._runs and len(self._runs[-1]) <= len(run):
            older = self._runs.pop()
            if len(older) + len(run) <= _SORTED_MERGE_LIMIT:
                # Two sorted runs back to back sort in one linear pass of timsort, in C: a
                # tenth of heapq.merge's cost (a Python generator step an id)...
                older.extend(run)
                run = array("q", sorted(older))
            else:  # ...but through a list of int objects (~40 bytes an id): big ones stream
                run = array("q", heapq.merge(older, run))
        self._runs.append(run)

    def __contains__(self, order_id: object) -> bool:
        if self._fresh:
            self._sort_fresh()
        wanted = hash(order_id)
        for run in self._runs:
            at = bisect_left(run, wanted)
            if at < len(run) and run[at] == wanted:
                return True
        return False

    def __len__(self) -> int:
        return sum(map(len, self._runs)) + len(self._fresh)


class SkipBudgetExceededError(Exception):
    pass


class CancelledAtBoundaryError(Exception):
    """The run stopped at a batch boundary because an operator asked it to."""


@dataclass(slots=True)
class ClassifiedBatch:
    batch_no: int
    size: int
    changes: list[OrderChange] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)
    order_dates: dict[str, str] = field(default_factory=dict)  # of the valid orders
    # The JSON each changed order was hashed from, where it is the whole order: kept as its
    # document (`cancellable_document`) without serialising the order again.
    hashed_json: dict[str, bytes] = field(default_factory=dict)


def docs_order_ids(docs: list[OrderDocument]) -> list[str]:
    """The ids of these documents, where they have one (an invalid one may not)."""
    return [
        doc["order_id"]
        for doc in docs
        if isinstance(doc, dict) and isinstance(doc.get("order_id"), str)
    ]


def classify(
    batch_no: int,
    docs: list[OrderDocument],
    state: StateStore,
    *,
    force: bool = False,
    identity: str | None = None,
    held_under: Mapping[str, tuple[str, ...]] | None = None,
    order_ids: list[str] | None = None,
) -> ClassifiedBatch:
    """Invalid orders get their reason; valid ones are new, updated or unchanged according to
    the content hash of what the destination (`identity`; None: the state's) last confirmed.
    `force` (a resend): none is unchanged, each one the destination has is sent again as an
    update. `held_under`: e-mails a verify found orders under besides the ERP's
    (`OrderChange.held_under`). `order_ids`: `docs_order_ids(docs)`, when the caller has it."""
    batch = ClassifiedBatch(batch_no, len(docs))
    elsewhere = held_under or {}
    if order_ids is None:
        order_ids = docs_order_ids(docs)
    # The confirmed hashes alone: the records of what was sent are read (one more query) only
    # for the orders that changed, most batches of a scheduled run having none.
    confirmed = state.confirmed_hashes(order_ids, destination=identity)
    overrides = state.payment_overrides(order_ids)
    changed: list[tuple[OrderDocument, bool]] = []  # each with whether it was sent before
    for doc in docs:
        order_id = doc.get("order_id") if isinstance(doc, dict) else None
        before = confirmed.get(order_id) if isinstance(order_id, str) else None
        # An order equal to the version the destination confirmed passed validation then: it
        # is unchanged without being validated again (most of an unchanged run's time).
        if (
            before is not None
            and not force
            and order_id not in overrides
            and known_hash(doc) == before
        ):
            batch.order_dates[order_id] = doc["order_date"]
            batch.unchanged.append(order_id)
            continue
        problem = order_problem(doc)
        if problem is not None:
            batch.invalid[str(order_id)] = f"invalid order: {problem}"
            continue
        batch.order_dates[order_id] = doc["order_date"]
        # A payment callback's status wins over the ERP's, bar what the ERP took back
        # itself (a credit memo's refund, a cancellation: interfaces.md §7).
        if order_id in overrides and doc["payment_status"] not in ERP_TAKEN_BACK:
            doc = {**doc, "payment_status": overrides[order_id]}
        digest, hashed = content_hash_and_json(doc)
        if before is not None and not force and before == digest:
            batch.unchanged.append(order_id)
            continue
        changed.append((doc, before is not None))
        batch.hashes[order_id] = digest
        if hashed is not None:
            batch.hashed_json[order_id] = hashed
    sent_before = [doc["order_id"] for doc, sent in changed if sent]
    previous = state.exported_orders(sent_before, destination=identity) if sent_before else {}
    for doc, _ in changed:
        order_id = doc["order_id"]
        before_record = previous.get(order_id)
        also = elsewhere.get(order_id, ())
        if before_record is None:
            batch.changes.append(OrderChange(doc, "new", None, also))
        else:
            batch.changes.append(OrderChange(doc, "updated", before_record, also))
    return batch


def cancellable_document(doc: OrderDocument, hashed: bytes | None = None) -> bytes | None:
    """The document kept with an exported order that may still be cancelled (not shipped):
    should the ERP stop listing it, it is sent once more as cancelled (`engine.cancellations`).
    A shipped order is never cancelled, and keeps none. `hashed`: the order's JSON as its
    content hash read it (the same order, keys sorted), used as it is when given."""
    if doc["shipping_status"] == "shipped":
        return None
    return orjson.dumps(doc) if hashed is None else hashed


class BatchPipeline:
    """Sends up to `destination.max_batches_in_flight` batches at once and records each, in
    the order they were read, once its send has finished. Nothing of a batch is recorded
    before the destination answered for all of it."""

    def __init__(
        self,
        *,
        run_id: int,
        state: StateStore,
        destination: Destination,
        retrier: Retrier,
        counts: RunCounts,
        skip_budget: int,
        emit: Callable[[EngineEvent], None],
        clock: Callable[[], datetime],
        cancel_requested: Callable[[], bool],
        force: bool = False,
        results: dict[str, OrderResult] | None = None,
        identity: str | None = None,
        held_under: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        """`force`: send every valid order, changed or not (a resend). `results`: when given,
        each recorded order's outcome is put there (runs limited to chosen ids). `identity`:
        the destination's, whose confirmations the state keeps (None: the state's).
        `held_under`: a verify repair's orders found under other e-mails (`classify`)."""
        self.identity = state.destination if identity is None else identity
        self.run_id = run_id
        self.state = state
        self.destination = destination
        self.retrier = retrier
        self.counts = counts
        self.skip_budget = skip_budget
        self.emit = emit
        self.clock = clock
        self.cancel_requested = cancel_requested
        self.force = force
        self.held_under = held_under or {}
        self.results = results
        self.total: int | None = None
        # The ids of every order read, valid or not: a run over the whole window forgets
        # the exported orders it did not meet (`StateStore.forget_unread`).
        self.read_ids = ReadIds()
        self._limit = max(1, int(getattr(destination, "max_batches_in_flight", 1)))
        self._in_flight: deque[tuple[ClassifiedBatch, asyncio.Task[dict[str, str]]]] = deque()
        self._batch_no = 0

    @property
    def batches_started(self) -> int:
        return self._batch_no

    async def submit(self, docs: list[OrderDocument]) -> None:
        """Start sending one batch; waits while the pipeline is full."""
        if self.cancel_requested():
            await self.drain()
            raise CancelledAtBoundaryError
        self._batch_no += 1
        order_ids = docs_order_ids(docs)
        self.read_ids.update(order_ids)
        self.emit(BatchStarted(self.run_id, self._batch_no, len(docs)))
        batch = classify(
            self._batch_no,
            docs,
            self.state,
            force=self.force,
            identity=self.identity,
            held_under=self.held_under,
            order_ids=order_ids,
        )
        send = asyncio.ensure_future(self._send(batch))
        self._in_flight.append((batch, send))
        # A new send starts as soon as any slot frees up; an answered batch waits (at most as
        # many again) until every batch read before it is recorded. Answered batches at the
        # head are recorded before any wait: under an eager task factory (Python 3.12+, as
        # Textual's loop has it) a send can be done the moment it is created.
        while True:
            while self._in_flight and self._in_flight[0][1].done():
                await self._record_oldest()
            if self._sending() < self._limit and len(self._in_flight) < 2 * self._limit:
                return
            await asyncio.wait(
                [task for _, task in self._in_flight if not task.done()] or [send],
                return_when=asyncio.FIRST_COMPLETED,
            )

    def _sending(self) -> int:
        return sum(1 for _, task in self._in_flight if not task.done())

    async def drain(self) -> None:
        """Wait for every batch in flight and record it."""
        while self._in_flight:
            await self._record_oldest()

    async def abandon(self) -> None:
        """Stop the batches in flight without recording them (the run is failing or being
        cancelled mid-batch): what they delivered is sent again by a later run, harmlessly."""
        while self._in_flight:
            _, send = self._in_flight.popleft()
            send.cancel()
            with contextlib.suppress(BaseException):
                await send

    async def _send(self, batch: ClassifiedBatch) -> dict[str, str]:
        if not batch.changes:
            return {}
        return await self.destination.send_batch(batch.changes, self.retrier)

    async def _record_oldest(self) -> None:
        batch, send = self._in_flight[0]
        rejected = await send
        self._in_flight.popleft()
        self._record(batch, rejected)

    def _note_results(
        self, batch: ClassifiedBatch, confirmed: list[OrderChange], skipped: dict[str, str]
    ) -> None:
        assert self.results is not None
        name = self.destination.name
        for change in confirmed:
            self.results[change.order_id] = OrderResult(
                change.order_id, SENT, f"confirmed by {name}"
            )
        for order_id in batch.unchanged:
            self.results[order_id] = OrderResult(
                order_id, UNCHANGED, f"{name} already has this version; nothing to send"
            )
        for order_id, reason in skipped.items():
            self.results[order_id] = OrderResult(order_id, REFUSED, reason)

    def _record(self, batch: ClassifiedBatch, rejected: dict[str, str]) -> None:
        confirmed = (
            [change for change in batch.changes if change.order_id not in rejected]
            if rejected
            else batch.changes
        )
        skipped = dict(batch.invalid)
        for order_id, reason in rejected.items():
            skipped[order_id] = redact(f"rejected by {self.destination.name}: {reason}")
        self.state.record_batch(
            run_id=self.run_id,
            now=self.clock(),
            exported=[_exported_order(change.document, batch) for change in confirmed],
            destination=self.identity,
            skipped=skipped,
            resolved=batch.unchanged,
            seen={order_id: batch.order_dates[order_id] for order_id in batch.unchanged},
        )
        counts = self.counts
        counts.read += batch.size
        counts.unchanged += len(batch.unchanged)
        new = sum(1 for change in confirmed if change.kind == "new")
        counts.new += new
        counts.updated += len(confirmed) - new
        counts.skipped += len(skipped)
        for order_id, reason in skipped.items():
            self.emit(ItemSkipped(self.run_id, order_id, reason))
        if self.results is not None:
            self._note_results(batch, confirmed, skipped)
        self.emit(
            BatchFinished(
                self.run_id,
                batch.batch_no,
                batch.size,
                len(confirmed),
                counts.read,
                self.total,
                counts.as_dict(),
            )
        )
        if counts.skipped > self.skip_budget:
            raise SkipBudgetExceededError(
                f"{counts.skipped} orders skipped, more than max_items_to_skip = {self.skip_budget}"
            )


def _exported_order(doc: OrderDocument, batch: ClassifiedBatch) -> ExportedOrder:
    """What the state keeps of a confirmed order of `batch` (its id read once: a first run
    builds one for every order)."""
    order_id = doc["order_id"]
    return ExportedOrder(
        order_id,
        batch.hashes[order_id],
        doc["shipping_status"],
        doc["payment_status"],
        document=cancellable_document(doc, batch.hashed_json.get(order_id)),
        order_date=doc["order_date"],
        customer_email=doc["customer"]["email"],
    )
