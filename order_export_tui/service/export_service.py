"""The service: the scheduler, the engine and the failure e-mail, wired for the daemon and
the dashboard alike.

A `schedule.Scheduler()` holds at most one job, and that job only asks for a run; the
asyncio loop in `serve()` calls `run_pending()` and sleeps until the next due time (or until
the settings change). A request that arrives while a run is in flight is skipped and recorded,
never queued behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import schedule

from order_export_tui.destinations.base import Destination
from order_export_tui.engine.fanout import Listeners
from order_export_tui.engine.runner import ExportEngine, RunScope, local_now
from order_export_tui.engine.verify import CopyReading
from order_export_tui.service.delivery import OUTAGE_BACKOFF_SECONDS, RealtimeDelivery
from order_export_tui.service.events import (
    SUCCEEDED,
    FailureEmailOutcome,
    NotificationResult,
    OrderResult,
    RealtimeActivity,
    RunReport,
    RunRequestSkipped,
    ServiceEvent,
    SettingsApplied,
    VerifyFinished,
)
from order_export_tui.service.health import HealthSnapshot, build_health
from order_export_tui.service.intake import Intake, IntakeLimits, IntakeServer
from order_export_tui.service.monitoring import Monitoring, MonitoringServer
from order_export_tui.service.notify import notify_run_failed
from order_export_tui.service.verify_answer import DriftItem, VerifyAnswer, VerifyOutcome
from order_export_tui.settings import (
    Settings,
    TaskSettings,
    destination_identity,
    secret_value,
    settings_to_dict,
)
from order_export_tui.settings.connectors import destination_key_prefixes, restart_keys
from order_export_tui.settings.rules import with_values_of
from order_export_tui.sources.base import OrderSource
from order_export_tui.state import StateStore, StateWriteError, state_location
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import Retrier

log = logging.getLogger("order_export.service")

# The loop wakes at least this often, so a clock jump (suspend, NTP) is noticed in time.
MAX_IDLE_SECONDS = 60.0

SCHEDULE = "schedule"
REPAIR = "repair"  # the trigger of a verify's repair run

# Settings that only a restart applies: what the running process bound or opened at start (the
# webhook server and its secret, the monitoring address, the state database, the logs folder
# the log view watches, the control socket). Every other key applies at once: the schedule,
# the next run, and real-time delivery.
RESTART_TABLES = ("webhook", "monitoring", "storage")
RESTART_KEY_PREFIXES = tuple(f"{table}." for table in RESTART_TABLES)
# Settings that real-time delivery reads when it opens its destination: `destination.`, each
# destination connector's table and `webstore.` (settings.connectors.destination_key_prefixes).


@dataclass(frozen=True, slots=True)
class OrdersAnswer:
    """What `resend` and `retry` did, as plain data: `started` false when no run could start
    (`message` says why); else each chosen order's outcome (`OrderResult`: sent, unchanged,
    not_found, refused or not_sent, with its reason) and the run's report."""

    started: bool
    message: str
    orders: tuple[OrderResult, ...] = ()
    report: RunReport | None = None

    @classmethod
    def of(cls, report: RunReport) -> OrdersAnswer:
        """The answer that a finished resend or retry run gives."""
        return cls(True, _orders_message(report), tuple(report.orders), report)

    @property
    def all_confirmed(self) -> bool:
        """Every chosen order is confirmed by the destination (exit code 0)."""
        if not self.started:
            return False
        succeeded = self.report is None or self.report.outcome == SUCCEEDED
        return succeeded and all(order.confirmed for order in self.orders)

    def order_lines(self) -> list[str]:
        """One line per chosen order, its id in a column: `SO-1  not found: <reason>`."""
        width = max((len(order.order_id) for order in self.orders), default=0)
        return [
            f"{order.order_id:<{width}}  {order.status.replace('_', ' ')}: {order.reason}"
            for order in self.orders
        ]

    def as_json(self) -> dict[str, object]:
        return {
            "started": self.started,
            "message": self.message,
            "orders": [order.as_json() for order in self.orders],
            "run": None if self.report is None else self.report.as_json(),
        }


def _orders_message(report: RunReport) -> str:
    confirmed = sum(1 for order in report.orders if order.confirmed)
    run = f"run {report.run_id} {report.outcome}"
    text = f"{confirmed} of {len(report.orders)} orders confirmed ({run})"
    return text if report.error is None else f"{text}: {report.error}"


Notifier = Callable[[Settings, RunReport], Awaitable[NotificationResult | None]]
Waiter = Callable[[asyncio.Event, float], Awaitable[None]]


async def wait_for_event(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def flat_settings(settings: Settings) -> dict[str, object]:
    """Every key as "table.key" (nested tables dotted too) -> its value."""
    flat: dict[str, object] = {}

    def walk(table: dict[str, object], prefix: str) -> None:
        for name, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{name}.")
            else:
                flat[prefix + name] = value

    walk(settings_to_dict(settings), "")  # type: ignore[arg-type]
    return flat


def changed_keys(before: Settings, after: Settings) -> list[str]:
    old, new = flat_settings(before), flat_settings(after)
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def schedule_description(settings: Settings) -> str:
    task = settings.task
    if not task.run_on_schedule:
        return "manual only"
    if task.run_time:
        return f"daily at {task.run_time} (server time)"
    minutes = task.run_interval_minutes
    return "every minute" if minutes == 1 else f"every {minutes} minutes"


def _no_health() -> HealthSnapshot:
    raise RuntimeError("the real-time channel is not hosted by a service yet")


class RealtimeChannel:
    """The webhook intake and the delivery of what it accepts.

    `intake_state` is a connection of its own to the state database, one that syncs every
    commit to disk: an event answered 202 is never lost.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        state: StateStore,
        intake_state: StateStore,
        destination_factory: Callable[[Settings], Destination],
        source_factory: Callable[[Settings, Retrier], OrderSource] | None = None,
        secret: str,
        clock: Callable[[], datetime] = local_now,
        outage_backoff: Sequence[float] = OUTAGE_BACKOFF_SECONDS,
        limits: IntakeLimits | None = None,
    ) -> None:
        self.listen = settings.webhook.listen
        self._listeners: Listeners[RealtimeActivity] = Listeners("real-time")
        self.delivery = RealtimeDelivery(
            settings,
            state,
            destination_factory,
            source_factory=source_factory,
            emit=self._listeners.emit,
            clock=clock,
            outage_backoff=outage_backoff,
        )
        self.intake = Intake(
            state=intake_state,
            secret=secret,
            clock=clock,
            on_accepted=self.delivery.wake,
            health=lambda: self.health_provider().webhook_answer(),
            scheme=settings.webhook.scheme,
            tolerance_seconds=settings.webhook.tolerance_seconds,
            limits=limits,
        )
        # The snapshot GET /healthz answers from; the service that hosts the channel sets it.
        self.health_provider: Callable[[], HealthSnapshot] = _no_health
        self._server = IntakeServer(self.intake, settings.webhook.listen)
        self._delivering: asyncio.Task[None] | None = None
        # With a PostgreSQL state: what wakes delivery for events other daemons took (§10).
        self.event_feed: Callable[[Callable[[], None]], Awaitable[None]] | None = None
        self._feeding: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._server.listening

    def subscribe(self, listener: Callable[[RealtimeActivity], None]) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    async def start(self) -> None:
        await self._server.start()  # first: a taken address starts nothing
        self._delivering = asyncio.create_task(self.delivery.run())
        if self.event_feed is not None:
            self._feeding = asyncio.create_task(self.event_feed(self.delivery.wake))
        log.info("webhook intake listening on %s", self.listen)

    async def stop(self) -> None:
        """Stop accepting, then let the event in delivery finish."""
        await self._server.stop()
        if self._feeding is not None:
            self._feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feeding
        self.delivery.stop()
        if self._delivering is not None:
            await self._delivering


class ExportService:
    def __init__(
        self,
        settings: Settings,
        engine: ExportEngine,
        *,
        realtime: RealtimeChannel | None = None,
        notifier: Notifier = notify_run_failed,
        wait: Waiter = wait_for_event,
        clock: Callable[[], datetime] = local_now,
    ) -> None:
        self.settings = settings
        self._started_with = settings  # what the restart-only keys are while this process runs
        self.engine = engine
        self.scheduler = schedule.Scheduler()
        self.last_notification: NotificationResult | None = None
        self._notifier = notifier
        self._wait = wait
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._run_task: asyncio.Task[RunReport | None] | None = None
        self._verify_task: asyncio.Task[VerifyAnswer] | None = None
        self._verifying = False
        self._verify_due = False  # the schedule asked for a verify while busy
        self._scheduled_verify: asyncio.Task[VerifyAnswer] | None = None
        self.last_verify: VerifyAnswer | None = None
        # What the last verify of this destination's copy left, from the state at start: a
        # restart keeps the drift gauge, `/healthz` and the verify schedule where they were.
        self.last_verify_outcome = self._recorded_verify()
        # Why the last requested run could not start, when the state database refused it.
        self.start_failure: StateWriteError | None = None
        self._listeners: Listeners[ServiceEvent] = Listeners("service")
        self.realtime = realtime
        if realtime is not None:
            realtime.subscribe(self._emit)
            realtime.health_provider = self.health
        self.monitoring = Monitoring(self.health)
        engine.subscribe(self.monitoring.tallies)
        self.subscribe(self.monitoring.tallies)
        self._monitoring_server: MonitoringServer | None = None
        # Work that runs beside the schedule while `serve` does (a cluster leader's: §10).
        self.companions: list[Callable[[], Awaitable[None]]] = []
        self._build_schedule()
        # The verify's own schedule: `next_run` and the run's job stay the run's alone.
        self.verify_scheduler = schedule.Scheduler()
        self._build_verify_schedule()

    # --- what the dashboard and the daemon read ---------------------------------------------

    @property
    def next_run(self) -> datetime | None:
        """When the schedule next asks for a run (server-local, aware), None when manual only."""
        due = self.scheduler.next_run
        return None if due is None else due.astimezone()

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def run_in_progress(self) -> bool:
        return self.engine.running or (self._run_task is not None and not self._run_task.done())

    def now(self) -> datetime:
        return self._clock()

    def health(self) -> HealthSnapshot:
        """The scheduler, the real-time queue and the destination now: what both `GET
        /healthz` (the webhook's and monitoring's) and the gauges answer from."""
        realtime = self.realtime
        return build_health(
            self.engine.state,
            now=self.now(),
            schedule=schedule_description(self.settings),
            next_run=self.next_run,
            run_in_progress=self.run_in_progress,
            destination_app=self.settings.destination.app,
            intake_listening=realtime is not None and realtime.listening,
            delivery=None if realtime is None else realtime.delivery.health(),
            last_verify=self.last_verify_outcome,
        )

    def subscribe(self, listener: Callable[[ServiceEvent], None]) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    # --- steering -----------------------------------------------------------------------

    def apply_settings(self, settings: Settings) -> list[str]:
        """Use new settings from now on: the schedule changes at once, the next run and
        real-time delivery use them (its destination is reopened when one of its keys
        changed). The `webhook`, `monitoring` and `storage` tables keep the values this
        process started with; the changed keys among them are returned, and logged, as
        needing a restart."""
        previous = self.settings
        connector_restart_keys = restart_keys()
        restart_needed = [
            key
            for key in changed_keys(self._started_with, settings)
            if key.startswith(RESTART_KEY_PREFIXES) or key in connector_restart_keys
        ]
        # Those keep the value this process started with: nothing runs half on the new one.
        started = {table: getattr(self._started_with, table) for table in RESTART_TABLES}
        settings = dataclasses.replace(settings, **started)
        settings = with_values_of(self._started_with, settings, connector_restart_keys)
        changed = changed_keys(previous, settings)
        self.settings = settings
        self.engine.settings = settings
        if self.realtime is not None:
            self.realtime.delivery.apply_settings(
                settings,
                reopen_destination=any(
                    key.startswith(destination_key_prefixes()) for key in changed
                ),
            )
        if restart_needed:
            log.warning("needs a restart to take effect: %s", ", ".join(restart_needed))
        self._emit(SettingsApplied(tuple(restart_needed)))
        self._reschedule(previous.task, settings.task)
        if destination_identity(previous) != destination_identity(settings):
            self.last_verify_outcome = self._recorded_verify()  # another copy's verifies
        if previous.verify.interval_hours != settings.verify.interval_hours:
            self._build_verify_schedule()
            self._wake.set()
        return restart_needed

    def _reschedule(self, before: TaskSettings, after: TaskSettings) -> None:
        if (before.run_on_schedule, before.run_interval_minutes, before.run_time) != (
            after.run_on_schedule,
            after.run_interval_minutes,
            after.run_time,
        ):
            self._build_schedule()
            self._wake.set()

    def request_run(
        self,
        trigger: str = "manual",
        *,
        only: frozenset[str] | None = None,
        since: date | None = None,
        resend: bool = False,
    ) -> bool:
        """Start a run now; False (recorded, never queued) when one is already in flight.

        `only`: just these order ids, looked up by id (re-trying skipped orders; with
        `resend`, sent again even if unchanged). `since`: a backfill from that day on."""
        refusal = self._refusal()
        if refusal is not None:
            self._skip(trigger, refusal)
            return False
        self._run_task = asyncio.get_running_loop().create_task(
            self._run(trigger, RunScope(only=only, since=since, resend=resend))
        )
        return True

    async def resend(self, order_ids: Sequence[str]) -> OrdersAnswer:
        """Send these orders again now, changed or not; each confirmed by the destination
        (`order-export resend`)."""
        wanted = frozenset(order_id for order_id in order_ids if order_id)
        if not wanted:
            return OrdersAnswer(False, "no order id given")
        return await self._run_for_orders("resend", wanted, resend=True)

    async def retry(self, order_ids: Sequence[str] | None = None) -> OrdersAnswer:
        """Re-try these skipped orders now (all of them when None); one that no longer exists
        in the ERP leaves the skipped list with that reason (`order-export retry`)."""
        if order_ids is None:
            wanted = frozenset(self.engine.state.skipped_order_ids())
            if not wanted:
                return OrdersAnswer(True, "no skipped orders to re-try")
        else:
            wanted = frozenset(order_id for order_id in order_ids if order_id)
            if not wanted:
                return OrdersAnswer(False, "no order id given")
        return await self._run_for_orders("retry", wanted, resend=False)

    async def backfill(self, since: date) -> RunReport | None:
        """One run, now, of every order dated on or after `since`, beyond the window
        (`run --since`); None when a run is already in flight."""
        if not self.request_run("backfill", since=since):
            return None
        return await self.wait_for_run()

    async def _run_for_orders(
        self, trigger: str, wanted: frozenset[str], *, resend: bool
    ) -> OrdersAnswer:
        refusal = self._refusal()
        if not self.request_run(trigger, only=wanted, resend=resend):
            return OrdersAnswer(False, f"not started: {refusal}")
        report = await self.wait_for_run()
        if report is None:
            return OrdersAnswer(False, "the run ended before it reported")
        return OrdersAnswer.of(report)

    def _refusal(self) -> str | None:
        if self._stopping:
            return "the service is stopping"
        if self.run_in_progress:
            return "a run is already in progress"
        if self._verifying:
            return "a verify is in progress"
        return None

    # --- verify (interfaces.md §8) ------------------------------------------------------

    @property
    def verifying(self) -> bool:
        return self._verifying

    async def verify(
        self, since: date | None = None, *, repair: bool = False, trigger: str = "manual"
    ) -> VerifyAnswer:
        """Read the platform's copy of the window (from `since`) and name its drift from the
        ERP; with `repair`, send what drifts through a run (`repair`: a resend of the ERP's
        version, the extra orders as cancelled) and read again to confirm. Never while a
        run is in flight, nor beside another verify."""
        refusal = self._refusal()
        if refusal is not None:
            return VerifyAnswer(False, refusal, trigger=trigger)
        self._verifying = True
        self._verify_task = asyncio.get_running_loop().create_task(
            self._verify(since, repair=repair, trigger=trigger)
        )
        try:
            answer = await self._verify_task
        finally:
            self._verifying = False
        self.last_verify = answer
        if answer.started:
            self._keep_verify(answer.outcome(destination_identity(self.settings).identity))
        self._emit(VerifyFinished(answer))
        return answer

    def _keep_verify(self, outcome: VerifyOutcome) -> None:
        self.last_verify_outcome = outcome
        try:
            self.engine.state.verifies.record(outcome.row())
        except StateWriteError as error:  # known now; a restart will not know it
            log.error("verify: its outcome could not be kept in the state: %s", error)

    def _recorded_verify(self) -> VerifyOutcome | None:
        row = self.engine.state.verifies.last(destination_identity(self.settings).identity)
        return None if row is None else VerifyOutcome.of_row(row)

    async def _verify(self, since: date | None, *, repair: bool, trigger: str) -> VerifyAnswer:
        first = await self._read_copy(since)
        if isinstance(first, str):
            return self._verify_answer(trigger, error=first)
        found = tuple(map(DriftItem.of, first.drift))
        if not (repair and found) or self._stopping:
            return self._verify_answer(trigger, first, drift=found, remaining=found)
        scope = RunScope(
            only=frozenset(first.drifted_ids),
            resend=True,
            supplied=first.cancelled,
            held_under=first.held_under,
        )
        self._run_task = asyncio.get_running_loop().create_task(self._run(REPAIR, scope))
        report = await self.wait_for_run()
        run_id = None if report is None else report.run_id
        if self._stopping:
            error = "the service stopped before the repair was confirmed"
            return self._verify_answer(trigger, first, drift=found, error=error, run_id=run_id)
        second = await self._read_copy(since)
        if isinstance(second, str):
            error = f"the repair could not be confirmed: {second}"
            return self._verify_answer(trigger, first, drift=found, error=error, run_id=run_id)
        left = tuple(map(DriftItem.of, second.drift))
        unrepaired = {item.order_id for item in left}
        repaired = tuple(i for i in first.drifted_ids if i not in unrepaired)
        return self._verify_answer(
            trigger, first, drift=found, remaining=left, repaired=repaired, run_id=run_id
        )

    async def _read_copy(self, since: date | None) -> CopyReading | str:
        """The drift the engine reads, or why the copy (or the ERP) could not be read."""
        try:
            return await self.engine.verify(since)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("verify: the copy could not be read: %s", redact(str(error)))
            return redact(str(error) or type(error).__name__)

    def _verify_answer(
        self,
        trigger: str,
        reading: CopyReading | None = None,
        *,
        drift: tuple[DriftItem, ...] = (),
        remaining: tuple[DriftItem, ...] = (),
        repaired: tuple[str, ...] = (),
        error: str | None = None,
        run_id: int | None = None,
    ) -> VerifyAnswer:
        return VerifyAnswer(
            started=True,
            message="failed" if error else "verified",
            checked=0 if reading is None else reading.checked,
            drift=drift,
            repaired=repaired,
            remaining=remaining if error is None else drift,
            error=error,
            repair_run_id=run_id,
            finished_at=self._clock().isoformat(timespec="seconds"),
            trigger=trigger,
        )

    def _build_verify_schedule(self) -> None:
        self.verify_scheduler.clear()
        hours = self.settings.verify.interval_hours
        if hours > 0:
            job = self.verify_scheduler.every(hours).hours.do(self._verify_on_schedule)
            last = self.last_verify_outcome
            if last is not None and job.next_run is not None:
                # One interval after the last verify (this process's or one before it), due
                # at once when that has passed; `schedule` keeps naive local times.
                after_last = datetime.fromisoformat(last.finished_at) + timedelta(hours=hours)
                due = after_last.astimezone().replace(tzinfo=None)
                job.next_run = max(min(due, job.next_run), datetime.now())

    def _verify_on_schedule(self) -> None:
        self._verify_due = True
        self._wake.set()

    def _start_due_verify(self) -> None:
        if not self._verify_due or self._refusal() is not None:
            return
        self._verify_due = False
        self._scheduled_verify = asyncio.get_running_loop().create_task(
            self.verify(repair=self.settings.verify.repair, trigger=SCHEDULE)
        )

    def run_pending(self) -> None:
        """Fire the schedule's job if it is due (and the verify's)."""
        self.scheduler.run_pending()
        self.verify_scheduler.run_pending()

    async def wait_for_run(self) -> RunReport | None:
        """The report of the run in flight (or the last one) once it has finished."""
        if self._run_task is None:
            return None
        with contextlib.suppress(asyncio.CancelledError):
            return await self._run_task
        return self.engine.last_report

    async def serve(self) -> None:
        """Run the schedule (and the real-time channel, when there is one, and monitoring,
        when `monitoring.listen` is set) until `stop()`."""
        if self.settings.monitoring.listen:
            server = MonitoringServer(self.monitoring, self.settings.monitoring.listen)
            await server.start()
            self._monitoring_server = server
            log.info("monitoring listening on %s", server.listen)
        try:
            if self.realtime is not None:
                await self.realtime.start()
        except BaseException:
            await self._stop_monitoring()
            raise
        beside = [asyncio.create_task(companion()) for companion in self.companions]
        try:
            while not self._stopping:
                self.run_pending()
                self._start_due_verify()
                idle = _earliest(self.scheduler.idle_seconds, self.verify_scheduler.idle_seconds)
                timeout = (
                    MAX_IDLE_SECONDS if idle is None else min(max(idle, 0.0), MAX_IDLE_SECONDS)
                )
                self._wake.clear()
                await self._wait(self._wake, timeout)
        finally:
            for task in beside:
                task.cancel()
            if self.realtime is not None:
                await self.realtime.stop()
            await self._stop_monitoring()

    async def _stop_monitoring(self) -> None:
        server, self._monitoring_server = self._monitoring_server, None
        if server is not None:
            await server.stop()

    async def stop(self, *, abandon_batch: bool = False) -> None:
        """Stop scheduling; the run in flight stops at its next batch boundary (or, with
        `abandon_batch`, at once: the batch in flight is recorded nowhere and sent again later)."""
        self._stopping = True
        self._wake.set()
        verify = self._verify_task
        if verify is not None and not verify.done() and not self.run_in_progress:
            verify.cancel()  # it only reads: nothing is left half-done
        if self._run_task is not None and not self._run_task.done():
            if abandon_batch:
                self._run_task.cancel()
            else:
                self.engine.cancel()
            await self.wait_for_run()
        if verify is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await verify

    # --- inside -------------------------------------------------------------------------

    def _build_schedule(self) -> None:
        self.scheduler.clear()
        task = self.settings.task
        if not task.run_on_schedule:
            return
        if task.run_time:
            self.scheduler.every().day.at(task.run_time).do(self.request_run, SCHEDULE)
        elif task.run_interval_minutes > 0:
            self.scheduler.every(task.run_interval_minutes).minutes.do(self.request_run, SCHEDULE)

    def _skip(self, trigger: str, reason: str) -> None:
        at = self._clock()
        self.engine.state.record_skipped_tick(at=at, trigger=trigger, reason=reason)
        self._emit(RunRequestSkipped(at, trigger, reason))

    async def _run(self, trigger: str, scope: RunScope) -> RunReport | None:
        try:
            report = await self.engine.run(
                trigger,
                only=scope.only,
                since=scope.since,
                resend=scope.resend,
                supplied=scope.supplied,
                held_under=scope.held_under,
            )
        except StateWriteError as error:  # the run could not even be recorded as started
            log.error("%s run not started: %s", trigger, error)
            self.start_failure = error
            self._emit(RunRequestSkipped(self._clock(), trigger, str(error)))
            return None
        result = await self._notifier(self.settings, report)
        if result is not None:
            self.last_notification = result
            self._emit(FailureEmailOutcome(report.run_id, result))
        return report

    def _emit(self, event: ServiceEvent) -> None:
        self._listeners.emit(event)


def _earliest(*idle: float | None) -> float | None:
    """The soonest of the schedules' waits (None: nothing scheduled)."""
    due = [seconds for seconds in idle if seconds is not None]
    return min(due) if due else None


def assemble_service(
    settings: Settings, state: StateStore, *, realtime: bool = True
) -> tuple[ExportService, StateStore | None]:
    """The service as the daemon and the dashboard run it: the configured source and
    destination, and the real-time channel when `webhook.enabled`. Returns the service and
    the intake's own state connection (None without a webhook), which the caller closes.
    """
    from order_export_tui.service.wiring import build_destination, build_source

    engine = ExportEngine(
        settings, state, source_factory=build_source, destination_factory=build_destination
    )
    if not (realtime and settings.webhook.enabled):
        return ExportService(settings, engine), None
    intake_state = StateStore(state_location(settings), durable=True)
    realtime = RealtimeChannel(
        settings,
        state=state,
        intake_state=intake_state,
        destination_factory=build_destination,
        source_factory=build_source,
        secret=secret_value(settings.webhook.secret_env) or "",
    )
    return ExportService(settings, engine, realtime=realtime), intake_state
