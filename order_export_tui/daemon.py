"""`order-export daemon`: the scheduler and the engine with no screen.

Logs go to stderr, one plain line per event (`<time> <LEVEL> <message>`), for journald and
grep; each run also writes its own log file. The engine's and the service's events are logged
here, by `DaemonLog`, and nowhere below, so each is said once. Signals:
  SIGTERM / SIGINT  stop cleanly: the run in flight stops at its next batch boundary, or
                    at once where its batches only wait for an import (sent again later);
                    a second signal abandons the batch in flight (it is sent again later)
  SIGHUP            reload the settings file now (it is also checked every few seconds)
  SIGUSR1           run an export now
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path

from order_export_tui.engine.events import (
    BatchFinished,
    CancelRequested,
    EngineEvent,
    ItemSkipped,
    RetryScheduled,
    RunFinished,
    RunStarted,
)
from order_export_tui.logsafe import escape_for_log
from order_export_tui.service.events import (
    EventDelivered,
    EventHeld,
    EventRetried,
    EventSkipped,
    FailureEmailOutcome,
    RunRequestSkipped,
    ServiceEvent,
    VerifyFinished,
)
from order_export_tui.service.export_service import ExportService, schedule_description
from order_export_tui.service.hosted import HostedControl
from order_export_tui.service.session import HostedSession
from order_export_tui.service.stop_signals import StopSignals
from order_export_tui.settings import SettingsError, load_settings

log = logging.getLogger("order_export.daemon")

SETTINGS_POLL_SECONDS = 5.0
PROGRESS_EVERY_SECONDS = 10.0
VERIFY_ORDERS_LOGGED = 50  # drifting orders named one by one in the log; the rest counted


class OneLineFormatter(logging.Formatter):
    """`<time> <LEVEL> <message>` with the message on one line, whatever it holds (an SMTP
    server's multi-line reply, say); a traceback still follows on lines of its own. Other
    control and bidirectional characters are escaped: a logged value (an order id from a
    webhook) can neither start a line of its own nor disguise the rest of one."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_for_log(" ".join(super().formatMessage(record).splitlines()))


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = OneLineFormatter("%(asctime)s %(levelname)s %(message)s")
    formatter.converter = time.localtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S%z"
    formatter.default_msec_format = ""  # type: ignore[assignment]
    handler.setFormatter(formatter)
    root = logging.getLogger("order_export")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


class DaemonLog:
    """Engine and service events as log lines; progress at most every few seconds."""

    def __init__(self) -> None:
        self._last_progress = 0.0

    def engine_event(self, event: EngineEvent) -> None:
        match event:
            case RunStarted():
                total = "unknown" if event.total is None else event.total
                log.info(
                    "run %s started (%s): %s orders dated on or after %s",
                    event.run_id,
                    event.trigger,
                    total,
                    event.window_start.isoformat(),
                )
            case BatchFinished():
                now = time.monotonic()
                if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
                    self._last_progress = now
                    of = "" if event.total is None else f" of {event.total}"
                    log.info("run %s: %s%s orders processed", event.run_id, event.processed, of)
            case RetryScheduled():
                log.warning(
                    "run %s: retry %s of %s in %.1fs: %s",
                    event.run_id,
                    event.retry,
                    event.what,
                    event.delay_seconds,
                    event.error,
                )
            case ItemSkipped():
                log.warning("run %s: skipped %s: %s", event.run_id, event.order_id, event.reason)
            case CancelRequested():
                log.info("run %s: stopping at the next batch boundary", event.run_id)
            case RunFinished():
                report = event.report
                counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
                level = logging.INFO if report.outcome != "failed" else logging.ERROR
                log.log(
                    level,
                    "run %s %s in %.1fs: %s%s (log %s)",
                    report.run_id,
                    report.outcome,
                    report.duration_seconds,
                    counts,
                    f"; error: {report.error}" if report.error else "",
                    report.log_file,
                )

    def service_event(self, event: ServiceEvent) -> None:
        match event:
            case RunRequestSkipped():
                log.warning("%s run request skipped: %s", event.trigger, event.reason)
            case FailureEmailOutcome():
                result = event.result
                sent_to = ", ".join(result.recipients)
                if result.sent and result.error:  # some recipients refused
                    log.warning("run %s: %s", event.run_id, result.error)
                elif result.sent:
                    log.info("run %s: failure e-mail sent to %s", event.run_id, sent_to)
                else:
                    log.error("run %s: failure e-mail NOT sent: %s", event.run_id, result.error)
            case EventDelivered():
                log.info(
                    "event %s (%s for %s) %s in %.3fs",
                    event.event_id,
                    event.kind,
                    event.order_id,
                    "delivered again (an earlier attempt was left unrecorded)"
                    if event.resent
                    else "delivered",
                    event.latency_seconds,
                )
            case EventHeld():
                log.info(
                    "event %s: payment status held until order %s is known",
                    event.event_id,
                    event.order_id,
                )
            case EventRetried():
                log.warning("event %s not delivered yet: %s", event.event_id, event.error)
            case EventSkipped():
                log.warning(
                    "event %s for %s skipped: %s", event.event_id, event.order_id, event.reason
                )
            case VerifyFinished():
                answer = event.answer
                for item in answer.remaining[:VERIFY_ORDERS_LOGGED]:
                    # The values stay out of the log: they may be customers' addresses.
                    field = f" ({item.field})" if item.field else ""
                    log.warning("verify: %s %s%s", escape_for_log(item.order_id), item.kind, field)
                level = logging.INFO if answer.in_sync else logging.WARNING
                log.log(level, "%s verify: %s", answer.trigger, answer.summary())


async def serve(session: HostedSession) -> None:
    """Run the service until SIGTERM/SIGINT; the session holds the state lock."""
    service, control = session.service, session.control
    daemon_log = DaemonLog()
    service.engine.subscribe(daemon_log.engine_event)
    service.subscribe(daemon_log.service_event)
    watcher = SettingsWatcher(service.settings.path, service)
    _install_signal_handlers(control, watcher)
    settings = service.settings
    log.info(
        "started: webstore %r, %s -> %s, schedule %s, next run %s",
        settings.webstore.name,
        settings.erp.source,
        settings.destination.app,
        schedule_description(settings),
        _when(service),
    )
    watching = asyncio.create_task(watcher.watch())
    try:
        # A failure to listen (IntakeError, ControlSocketError) reaches the command, which
        # says it once.
        await control.serve()
    finally:
        watching.cancel()
    await service.wait_for_run()
    log.info("stopped cleanly")


def _when(service: ExportService) -> str:
    due = service.next_run
    return "none (manual only)" if due is None else due.isoformat(timespec="seconds")


def _install_signal_handlers(control: HostedControl, watcher: SettingsWatcher) -> None:
    loop = asyncio.get_running_loop()

    def announce(name: str, abandon_batch: bool) -> None:
        if abandon_batch:
            log.warning("%s again: abandoning the batch in flight", name)
        else:
            log.info(
                "%s: stopping (the run in flight stops at its next batch boundary, or at once"
                " where its batches only wait for the platform's import)",
                name,
            )

    StopSignals(lambda abandon: control.stop(abandon_batch=abandon), announce).install(loop)
    loop.add_signal_handler(signal.SIGHUP, watcher.reload)
    loop.add_signal_handler(signal.SIGUSR1, lambda: control.service.request_run("signal"))


class SettingsWatcher:
    """Applies the settings file when it changes; a file that does not validate is logged
    and ignored, and the settings in force stay."""

    def __init__(self, path: Path, service: ExportService) -> None:
        self.path = path
        self.service = service
        self._stamp = self._read_stamp()

    def _read_stamp(self) -> tuple[int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(SETTINGS_POLL_SECONDS)
            stamp = self._read_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                self.reload()

    def reload(self) -> None:
        # The stamp of what is about to be read: the poll then reloads only a later change,
        # not this one again (a SIGHUP after an edit was applied, or refused, twice).
        self._stamp = self._read_stamp()
        try:
            settings = load_settings(self.path)
        except SettingsError as error:
            log.error(
                "settings not applied, the old ones stay in force: %s", "; ".join(error.problems)
            )
            return
        self.service.apply_settings(settings)
        log.info(
            "settings applied: schedule %s, next run %s",
            schedule_description(settings),
            _when(self.service),
        )
