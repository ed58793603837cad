"""The export run: read the window's orders, send the new and changed ones in batches,
record what the destination confirmed, skip what cannot be sent (up to a budget)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import TypeVar

from order_export_tui.destinations.base import Destination, DestinationError
from order_export_tui.engine.batches import (
    BatchPipeline,
    CancelledAtBoundaryError,
    SkipBudgetExceededError,
)
from order_export_tui.engine.events import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    CancelRequested,
    EngineEvent,
    RetryScheduled,
    RunCounts,
    RunFinished,
    RunReport,
    RunSettings,
    RunStarted,
)
from order_export_tui.engine.runlogs import RunLog, log_file_name, prune_run_logs
from order_export_tui.orders import OrderDocument
from order_export_tui.settings import Settings
from order_export_tui.sources.base import OrderSource, SourceError
from order_export_tui.state import StateStore
from order_export_tui.transport.retry import (
    Retrier,
    RetriesExhaustedError,
    RetryPolicy,
    TransientError,
)

log = logging.getLogger("order_export.engine")
T = TypeVar("T")

Listener = Callable[[EngineEvent], None]
SourceFactory = Callable[[Settings, Retrier], OrderSource]
DestinationFactory = Callable[[Settings], Destination]


class RunInProgressError(Exception):
    """A run was requested while another is in flight."""


def local_now() -> datetime:
    return datetime.now().astimezone()


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
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[RunReport] | None = None
        self._cancel_requested = False
        self._current_run_id: int | None = None
        self.last_report: RunReport | None = None
        state.close_interrupted_runs(clock())

    # --- the interface -------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event; returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

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
        self, trigger: str = "manual", *, only: frozenset[str] | None = None
    ) -> asyncio.Task[RunReport]:
        """Start a run in the background; raises `RunInProgressError` if one is in flight.

        `only`: consider just these order ids (re-trying chosen skipped orders); the window
        still applies.
        """
        if self.running:
            raise RunInProgressError("an export run is already in progress")
        self._cancel_requested = False
        self._task = asyncio.get_running_loop().create_task(self._run(trigger, self.settings, only))
        return self._task

    async def run(
        self, trigger: str = "manual", *, only: frozenset[str] | None = None
    ) -> RunReport:
        return await self.start_run(trigger, only=only)

    def cancel(self) -> bool:
        """Ask the run in flight to stop at the next batch boundary. False when idle."""
        if not self.running or self._cancel_requested:
            return False
        self._cancel_requested = True
        if self._current_run_id is not None:
            self._emit(CancelRequested(self._current_run_id))
        return True

    # --- the run ---------------------------------------------------------------------------

    def _emit(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("an event listener failed on %s", type(event).__name__)

    async def _run(
        self, trigger: str, settings: Settings, only: frozenset[str] | None = None
    ) -> RunReport:
        started_at = self._clock()
        run_id = self.state.start_run(trigger=trigger, started_at=started_at)
        self._current_run_id = run_id
        logs_dir = settings.logs_dir_path
        log_path = logs_dir / log_file_name(started_at, run_id)
        run_log: RunLog | None = None
        counts = RunCounts()
        outcome, error = SUCCEEDED, None
        cancelled_from_outside = False
        try:
            run_log = RunLog(log_path, self._clock)
            self.state.set_run_log_file(run_id, str(log_path))
            self.subscribe(run_log.handle)
            await self._export(run_id, trigger, started_at, settings, counts, only)
        except CancelledAtBoundaryError:
            outcome = CANCELLED
        except asyncio.CancelledError:
            outcome, cancelled_from_outside = CANCELLED, True
        except (SkipBudgetExceededError, RetriesExhaustedError, DestinationError, SourceError) as e:
            outcome, error = FAILED, str(e)
        except TransientError as e:  # a source or destination that did not use the retrier
            outcome, error = FAILED, str(e)
        except OSError as e:  # a full disk, an unwritable logs folder or export file
            outcome, error = FAILED, f"cannot write a file: {e}"
        except Exception as e:
            log.exception("run %s failed unexpectedly", run_id)
            outcome, error = FAILED, f"unexpected error: {type(e).__name__}: {e}"
        finished_at = self._clock()
        report = RunReport(
            run_id=run_id,
            trigger=trigger,
            outcome=outcome,
            started_at=started_at,
            finished_at=finished_at,
            counts=counts.as_dict(),
            error=error,
            log_file=None if run_log is None else str(log_path),
        )
        self.state.finish_run(
            run_id, finished_at=finished_at, outcome=outcome, counts=report.counts, error=error
        )
        self._current_run_id = None
        self.last_report = report
        self._emit(RunFinished(report))
        if run_log is not None:
            self._listeners.remove(run_log.handle)
            run_log.close()
            prune_run_logs(logs_dir, settings.task.max_archived_log_files)
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
        only: frozenset[str] | None = None,
    ) -> None:
        task = settings.task

        def on_retry(what: str, retry: int, delay: float, error: TransientError) -> None:
            counts.retried += 1
            self._emit(RetryScheduled(run_id, what, retry, delay, str(error)))

        retrier = Retrier(
            RetryPolicy(task.max_retries, task.max_retry_interval_seconds),
            on_retry=on_retry,
            clock=self._monotonic,
            sleep=self._sleep,
        )
        start = window_start(started_at, task.max_days_to_export)
        source = self._source_factory(settings, retrier)
        destination = self._destination_factory(settings)
        pipeline = BatchPipeline(
            run_id=run_id,
            state=self.state,
            destination=destination,
            retrier=retrier,
            counts=counts,
            skip_budget=task.max_items_to_skip,
            emit=self._emit,
            clock=self._clock,
            cancel_requested=lambda: self._cancel_requested,
        )
        try:
            total = len(only) if only is not None else await source.count_orders(start)
            self._emit(
                RunStarted(run_id, trigger, started_at, start, total, run_settings(settings))
            )
            pipeline.total = total
            await destination.open()
            pending: list[OrderDocument] = []
            async for chunk in _read_ahead(source.iter_orders(start)):
                if only is not None:
                    chunk = [doc for doc in chunk if doc.get("order_id") in only]
                pending.extend(chunk)
                while len(pending) >= task.batch_size:
                    await pipeline.submit(pending[: task.batch_size])
                    del pending[: task.batch_size]
            if pending:
                await pipeline.submit(pending)
            await pipeline.drain()
        finally:
            await pipeline.abandon()
            await _close_quietly(source.close(), "the ERP source")
            await _close_quietly(destination.close(), "the destination")


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
