"""The export run: read the window's orders, send the new and changed ones in batches,
record what the destination confirmed, skip what cannot be sent (up to a budget)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import TypeVar

from order_export_tui.clock import local_now
from order_export_tui.destinations.base import Destination, DestinationError
from order_export_tui.engine.batches import (
    BatchPipeline,
    CancelledAtBoundaryError,
    SkipBudgetExceededError,
)
from order_export_tui.engine.cancellations import Removals
from order_export_tui.engine.events import (
    CANCELLED,
    FAILED,
    NOT_FOUND,
    NOT_SENT,
    SUCCEEDED,
    CancelRequested,
    EngineEvent,
    OrderNotFound,
    OrderResult,
    RetryScheduled,
    RunCounts,
    RunFinished,
    RunReport,
    RunSettings,
    RunStarted,
)
from order_export_tui.engine.fanout import Listeners
from order_export_tui.engine.runlogs import RunLog, log_file_name, prune_run_logs
from order_export_tui.engine.verify import CopyReading, read_copy
from order_export_tui.orders import OrderDocument
from order_export_tui.settings import Settings, destination_identity
from order_export_tui.sources.base import OrderSource, SourceError, lookup_orders
from order_export_tui.state import StateStore, StateWriteError
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import (
    Retrier,
    RetriesExhaustedError,
    RetryPolicy,
    TransientError,
)
from order_export_tui.transport.waiting import WaitInterrupted

log = logging.getLogger("order_export.engine")
T = TypeVar("T")

Listener = Callable[[EngineEvent], None]
SourceFactory = Callable[[Settings, Retrier], OrderSource]
DestinationFactory = Callable[[Settings], Destination]


class RunInProgressError(Exception):
    """A run was requested while another is in flight."""


def window_start(now: datetime, max_days: int) -> datetime:
    """Server-local midnight of `today - max_days`: the first moment of the export window."""
    first_day: date = now.astimezone().date() - timedelta(days=max_days)
    return datetime.combine(first_day, clock_time.min).astimezone()


def run_settings(settings: Settings) -> RunSettings:
    """What a run records of its settings; no secret (nor any secret's name) in it."""
    task = settings.task
    return RunSettings(
        webstore=settings.webstore.name,
        erp_source=settings.erp.source,
        destination_app=settings.destination.app,
        batch_size=task.batch_size,
        max_days_to_export=task.max_days_to_export,
        max_retries=task.max_retries,
        max_retry_interval_seconds=task.max_retry_interval_seconds,
        max_items_to_skip=task.max_items_to_skip,
        max_archived_log_files=task.max_archived_log_files,
    )


class ExportEngine:
    """Runs exports, one at a time, and reports through events.

    The caller owns the state database's lock (`state.StateLock`) for the engine's lifetime.
    """

    def __init__(
        self,
        settings: Settings,
        state: StateStore,
        *,
        source_factory: SourceFactory,
        destination_factory: DestinationFactory,
        clock: Callable[[], datetime] = local_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.state = state
        self._source_factory = source_factory
        self._destination_factory = destination_factory
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._listeners: Listeners[EngineEvent] = Listeners("engine")
        self._task: asyncio.Task[RunReport] | None = None
        self._cancel_requested = False
        self._interrupt: asyncio.Event | None = None  # set by cancel(): waits end at once
        self._current_run_id: int | None = None
        self.last_report: RunReport | None = None
        state.close_interrupted_runs(clock())
        # Exported orders are kept per destination; rows from before that become this one's.
        state.use_destination(destination_identity(settings).identity)

    # --- the interface -------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event; returns the function that unsubscribes it."""
        return self._listeners.subscribe(listener)

    async def events(self) -> AsyncIterator[EngineEvent]:
        """Every event from now on, as an async stream (until the consumer stops)."""
        queue: asyncio.Queue[EngineEvent] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start_run(
        self,
        trigger: str = "manual",
        *,
        only: frozenset[str] | None = None,
        since: date | None = None,
        resend: bool = False,
        supplied: Mapping[str, OrderDocument] | None = None,
        held_under: Mapping[str, tuple[str, ...]] | None = None,
    ) -> asyncio.Task[RunReport]:
        """Start a run in the background; raises `RunInProgressError` if one is in flight.

        `only`: just these order ids (re-trying skipped orders, resending), looked up by id
        whatever their date; the report then says what became of each (`RunReport.orders`).
        `resend`: send them even when the destination already has them as they are.
        `since`: this once, every order dated on or after that day, beyond the window (a
        backfill: the destination is opened with `backfill=True`).
        `supplied`: documents to send for chosen ids the ERP does not have (a verify repair's
        orders marked cancelled).
        `held_under`: for chosen ids, e-mails the platform holds them under besides the ERP's
        (a verify repair's): the destination takes each order away from those as it sends it.
        """
        if self.running:
            raise RunInProgressError("an export run is already in progress")
        if resend and only is None:
            raise ValueError("resend needs the order ids to send again")
        self._cancel_requested = False
        self._interrupt = asyncio.Event()
        scope = RunScope(
            only=only,
            since=since,
            resend=resend,
            supplied=supplied or {},
            held_under=held_under or {},
        )
        self._task = asyncio.get_running_loop().create_task(
            self._run(trigger, self.settings, scope)
        )
        return self._task

    async def run(
        self,
        trigger: str = "manual",
        *,
        only: frozenset[str] | None = None,
        since: date | None = None,
        resend: bool = False,
        supplied: Mapping[str, OrderDocument] | None = None,
        held_under: Mapping[str, tuple[str, ...]] | None = None,
    ) -> RunReport:
        return await self.start_run(
            trigger, only=only, since=since, resend=resend, supplied=supplied, held_under=held_under
        )

    async def verify(self, since: date | None = None) -> CopyReading:
        """Read the destination's copy of the window (from `since` when given) and name its
        drift from the ERP (interfaces.md §8). Writes nothing; raises when either side
        cannot be read after the retries."""
        settings = self.settings
        task = settings.task
        retrier = Retrier(
            RetryPolicy(task.max_retries, task.max_retry_interval_seconds),
            clock=self._monotonic,
            sleep=self._sleep,
        )
        start = window_start(self._clock(), task.max_days_to_export)
        if since is not None:
            start = datetime.combine(since, clock_time.min).astimezone()
        source = self._source_factory(settings, retrier)
        destination = self._destination_factory(settings)
        try:
            return await read_copy(
                self.state,
                identity=destination_identity(settings).identity,
                source=source,
                destination=destination,
                start=start,
                retrier=retrier,
            )
        finally:
            await _close_quietly(source.close(), "the ERP source")
            await _close_quietly(destination.close(), "the destination")

    def cancel(self) -> bool:
        """Ask the run in flight to stop at the next batch boundary, or at once where its
        batches only wait for the platform (an import being processed): those are recorded
        nowhere and sent again next time. False when idle."""
        if not self.running or self._cancel_requested:
            return False
        self._cancel_requested = True
        if self._interrupt is not None:
            self._interrupt.set()
        if self._current_run_id is not None:
            self._emit(CancelRequested(self._current_run_id))
        return True

    # --- the run ---------------------------------------------------------------------------

    def _emit(self, event: EngineEvent) -> None:
        self._listeners.emit(event)

    async def _run(self, trigger: str, settings: Settings, scope: RunScope) -> RunReport:
        started_at = self._clock()
        run_id = self.state.start_run(trigger=trigger, started_at=started_at)
        self._current_run_id = run_id
        logs_dir = settings.logs_dir_path
        log_path = logs_dir / log_file_name(started_at, run_id)
        run_log: RunLog | None = None
        unsubscribe_log: Callable[[], None] | None = None
        counts = RunCounts()
        results: dict[str, OrderResult] | None = None if scope.only is None else {}
        outcome, error = SUCCEEDED, None
        cancelled_from_outside = False
        try:
            run_log = RunLog(log_path, self._clock)
            unsubscribe_log = self.subscribe(run_log.handle)
            self.state.set_run_log_file(run_id, str(log_path))
            await self._export(run_id, trigger, started_at, settings, counts, scope, results)
        except (CancelledAtBoundaryError, WaitInterrupted):
            outcome = CANCELLED
        except asyncio.CancelledError:
            outcome, cancelled_from_outside = CANCELLED, True
        except (SkipBudgetExceededError, RetriesExhaustedError, DestinationError, SourceError) as e:
            outcome, error = FAILED, redact(str(e))
        except TransientError as e:  # a source or destination that did not use the retrier
            outcome, error = FAILED, redact(str(e))
        except StateWriteError as e:  # a full disk under the state database, say
            outcome, error = FAILED, str(e)
        except OSError as e:  # a full disk, an unwritable logs folder or export file
            outcome, error = FAILED, f"cannot write a file: {e}"
        except Exception as e:
            log.exception("run %s failed unexpectedly", run_id)
            outcome, error = FAILED, redact(f"unexpected error: {type(e).__name__}: {e}")
        finished_at = self._clock()
        try:
            self.state.finish_run(
                run_id,
                finished_at=finished_at,
                outcome=outcome,
                counts=counts.as_dict(),
                error=error,
            )
        except StateWriteError as e:
            # The run stays "running" in the database; the next start closes it as failed.
            log.error("run %s: its end could not be recorded: %s", run_id, e)
            unrecorded = f"the end of this run could not be recorded: {e}"
            outcome, error = FAILED, unrecorded if error is None else f"{error}; {unrecorded}"
        report = RunReport(
            run_id=run_id,
            trigger=trigger,
            outcome=outcome,
            started_at=started_at,
            finished_at=finished_at,
            counts=counts.as_dict(),
            error=error,
            log_file=None if run_log is None else str(log_path),
            orders=_order_results(scope.only, results, outcome, error),
        )
        self._current_run_id = None
        self.last_report = report
        self._emit(RunFinished(report))
        if unsubscribe_log is not None:
            unsubscribe_log()
        if run_log is not None:
            try:
                run_log.close()
                prune_run_logs(logs_dir, settings.task.max_archived_log_files)
            except OSError as e:
                log.error("run %s: its log file could not be finished: %s", run_id, e)
        if cancelled_from_outside:
            raise asyncio.CancelledError
        return report

    async def _export(
        self,
        run_id: int,
        trigger: str,
        started_at: datetime,
        settings: Settings,
        counts: RunCounts,
        scope: RunScope,
        results: dict[str, OrderResult] | None,
    ) -> None:
        task = settings.task
        only = scope.only

        def on_retry(what: str, retry: int, delay: float, error: TransientError) -> None:
            counts.retried += 1
            self._emit(RetryScheduled(run_id, what, retry, delay, redact(str(error))))

        retrier = Retrier(
            RetryPolicy(task.max_retries, task.max_retry_interval_seconds),
            on_retry=on_retry,
            clock=self._monotonic,
            sleep=self._sleep,
            interrupt=self._interrupt,
        )
        start = window_start(started_at, task.max_days_to_export)
        if scope.since is not None:
            start = datetime.combine(scope.since, clock_time.min).astimezone()
        source = self._source_factory(settings, retrier)
        destination = self._destination_factory(settings)
        identity = destination_identity(settings).identity
        pipeline = BatchPipeline(
            identity=identity,
            run_id=run_id,
            state=self.state,
            destination=destination,
            retrier=retrier,
            counts=counts,
            skip_budget=task.max_items_to_skip,
            emit=self._emit,
            clock=self._clock,
            cancel_requested=lambda: self._cancel_requested,
            force=scope.resend,
            held_under=scope.held_under,
            results=results,
        )
        try:
            total = len(only) if only is not None else await source.count_orders(start)
            self._emit(
                RunStarted(run_id, trigger, started_at, start, total, run_settings(settings))
            )
            pipeline.total = total
            await (destination.open(backfill=True) if scope.since else destination.open())
            if only is not None and results is not None:
                await self._export_chosen(
                    run_id, source, sorted(only), pipeline, results, task.batch_size, scope.supplied
                )
            else:
                await self._export_window(source, start, pipeline, task.batch_size)
            await pipeline.drain()
            if only is None:  # the whole window (from `since` on) was read: §7's removals
                removals = Removals(
                    identity=identity,
                    run_id=run_id,
                    state=self.state,
                    source=source,
                    destination=destination,
                    retrier=retrier,
                    counts=counts,
                    skip_budget=task.max_items_to_skip,
                    batch_size=task.batch_size,
                    emit=self._emit,
                    clock=self._clock,
                    cancel_requested=lambda: self._cancel_requested,
                    first_batch_no=pipeline.batches_started + 1,
                )
                await removals.settle(since=start, started_at=started_at, read=pipeline.read_ids)
        finally:
            await pipeline.abandon()
            await _close_quietly(source.close(), "the ERP source")
            await _close_quietly(destination.close(), "the destination")

    async def _export_window(
        self, source: OrderSource, start: datetime, pipeline: BatchPipeline, batch_size: int
    ) -> None:
        pending: list[OrderDocument] = []
        async for chunk in _read_ahead(source.iter_orders(start)):
            pending.extend(chunk)
            while len(pending) >= batch_size:
                await pipeline.submit(pending[:batch_size])
                del pending[:batch_size]
        if pending:
            await pipeline.submit(pending)

    async def _export_chosen(
        self,
        run_id: int,
        source: OrderSource,
        order_ids: list[str],
        pipeline: BatchPipeline,
        results: dict[str, OrderResult],
        batch_size: int,
        supplied: Mapping[str, OrderDocument],
    ) -> None:
        """The chosen orders, looked up by id a batch at a time (no window scan); those the
        ERP does not have are sent as `supplied` when there, else named, and leave the
        skipped list."""
        for first in range(0, len(order_ids), batch_size):
            chunk = order_ids[first : first + batch_size]
            found = await lookup_orders(source, chunk)
            if found is None:  # a source that cannot look orders up: read everything
                found = await _scan_for(source, set(chunk))
            chosen = [found.get(order_id) or supplied.get(order_id) for order_id in chunk]
            docs = [doc for doc in chosen if doc is not None]
            missing = [order_id for order_id, doc in zip(chunk, chosen, strict=True) if doc is None]
            if missing:
                self._not_found(run_id, missing, results, pipeline.identity)
            if docs:
                await pipeline.submit(docs)

    def _not_found(
        self, run_id: int, missing: list[str], results: dict[str, OrderResult], identity: str
    ) -> None:
        skipped = set(self.state.skipped_order_ids(missing))
        exported = self.state.exported_orders(missing, destination=identity)
        self.state.forget_skipped(skipped)
        for order_id in missing:
            if order_id in skipped:
                reason = "no longer in the ERP: removed from the skipped list"
            elif order_id in exported:
                reason = "no longer in the ERP (it was exported before); nothing sent"
            else:
                reason = "not in the ERP, and never exported or skipped"
            results[order_id] = OrderResult(order_id, NOT_FOUND, reason)
            self._emit(OrderNotFound(run_id, order_id, reason))


@dataclass(frozen=True, slots=True)
class RunScope:
    """What one run covers: the window (or from `since` on), or just the `only` ids."""

    only: frozenset[str] | None = None
    since: date | None = None
    resend: bool = False
    supplied: Mapping[str, OrderDocument] = field(default_factory=dict)
    # A verify repair's orders the platform holds under other e-mails (`OrderChange.held_under`).
    held_under: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _order_results(
    only: frozenset[str] | None,
    results: dict[str, OrderResult] | None,
    outcome: str,
    error: str | None,
) -> tuple[OrderResult, ...]:
    """Each chosen id's outcome; one the run never settled is `not_sent`, with the reason."""
    if only is None or results is None:
        return ()
    why = error or ("the run was cancelled" if outcome == CANCELLED else "not sent")
    return tuple(
        results.get(order_id) or OrderResult(order_id, NOT_SENT, why) for order_id in sorted(only)
    )


async def _scan_for(source: OrderSource, wanted: set[str]) -> dict[str, OrderDocument | None]:
    found: dict[str, OrderDocument | None] = dict.fromkeys(wanted)
    async for chunk in source.iter_orders(datetime(1970, 1, 1).astimezone()):
        for doc in chunk:
            if doc.get("order_id") in wanted:
                found[doc["order_id"]] = doc
    return found


async def _read_ahead(chunks: AsyncIterator[T]) -> AsyncIterator[T]:
    """Yield from `chunks` while the next one is already being read.

    Sources read in a thread (SQLite) or over the network, so reading the next chunk overlaps
    with classifying and sending the current one.
    """
    iterator = aiter(chunks)
    pending = asyncio.ensure_future(anext(iterator))
    try:
        while True:
            try:
                chunk = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(iterator))
            yield chunk
    finally:
        pending.cancel()
        # Awaiting also collects an outcome nobody read (the end of the stream, an error).
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
            await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def _close_quietly(closing: Awaitable[None], what: str) -> None:
    try:
        await closing
    except Exception:
        log.exception("closing %s failed", what)
