"""A standby's control socket (interfaces.md §10): the dashboard and the commands attached
to a standby see the leader's run live and steer the leader. Its status and history are the
shared state's; its event stream is the leader's run events, heard by LISTEN on the channel
the leader publishes them on (`state.pg_run_events`); a run, cancel, retry or verify asked
of it is put to the leader through the database (`forwarding`)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from order_export_tui.engine.events import RunFinished, RunReport
from order_export_tui.service.control import Answer, RunInProgress
from order_export_tui.service.forwarding import (
    ForwardingError,
    ask_cancel,
    ask_run,
    forward_verify,
    wait_for_report,
)
from order_export_tui.service.hosted import HostedControl
from order_export_tui.service.run_relay import decode_run_event, finished_from_row
from order_export_tui.service.verify_answer import VerifyAnswer
from order_export_tui.settings import Settings
from order_export_tui.state import PostgresLocation, StateStore

log = logging.getLogger("order_export.daemon")

REFRESH_SECONDS = 1.0  # how often the listener looks for news beside NOTIFY's wake-up


class StandbyControl(HostedControl):
    """`HostedControl` over a service that never runs here: reading is the shared state's,
    the run in flight is the leader's (as its events tell it), steering goes to the leader."""

    def __init__(self, *args: Any, location: PostgresLocation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.location = location
        self._ended: set[int] = set()  # runs whose end was told (by the leader or its report)
        self._waits: set[asyncio.Task[None]] = set()
        self._reporting: set[int] = set()  # runs asked here: their report ends them
        self._closing = threading.Event()  # the standby leads now, or stops: stop waiting

    def relay(self, event: object) -> None:
        """One of the leader's run events, told to this socket's listeners."""
        if isinstance(event, RunFinished):
            if event.report.run_id in self._ended:
                return
            self._ended.add(event.report.run_id)
        self._on_event(event)  # type: ignore[arg-type]

    def _run_in_flight(self, last: list[Any]) -> RunInProgress | None:
        running = [row for row in last if row.finished_at is None]
        if not running:
            return None  # nothing runs (the leader that ran it died: marked failed)
        watched = self._watch.run
        if watched is not None and watched.run_id == running[0].run_id:
            return watched
        row = running[0]  # begun before this standby listened: what its row says
        counts = row.counts
        return RunInProgress(
            run_id=row.run_id,
            trigger=row.trigger,
            started_at=row.started_at,
            orders_total=None,
            orders_done=counts.get("read", 0),
            sent=counts.get("new", 0) + counts.get("updated", 0) + counts.get("cancelled", 0),
            skipped=counts.get("skipped", 0),
            retried=counts.get("retried", 0),
            log_file=row.log_file,
        )

    async def start_run(
        self, trigger: str = "manual", *, only: list[str] | None = None, since: str | None = None
    ) -> Answer:
        if trigger == "retry" and only is None:
            only = self.state.skipped_order_ids()
            if not only:
                return Answer(False, "no skipped orders to re-try")
        try:
            request_id, answer = await asyncio.to_thread(
                ask_run, self.location, trigger, only=only, since=since
            )
        except ForwardingError as error:
            return Answer(False, str(error))
        if answer.ok and answer.run_id is not None:
            self._reporting.add(answer.run_id)
            wait = asyncio.get_running_loop().create_task(
                self._report_of(request_id, answer.run_id)
            )
            self._waits.add(wait)
            wait.add_done_callback(self._waits.discard)
        return answer

    async def _report_of(self, request_id: int, run_id: int) -> None:
        """The run's end from its report, for followers that missed the leader's event (a
        report too long for NOTIFY)."""
        try:
            report: RunReport | None = await asyncio.to_thread(
                wait_for_report, self.location, request_id, run_id, self._closing
            )
            if report is not None:
                await asyncio.sleep(REFRESH_SECONDS)  # the leader's own event first, if it comes
                self.relay(RunFinished(report))
        finally:
            self._reporting.discard(run_id)

    async def cancel(self) -> Answer:
        try:
            return await asyncio.to_thread(ask_cancel, self.location)
        except ForwardingError as error:
            return Answer(False, str(error))

    async def verify(self, since: str | None = None, repair: bool = False) -> VerifyAnswer:
        try:
            return await asyncio.to_thread(forward_verify, self.location, since, repair)
        except ForwardingError as error:
            return VerifyAnswer(False, str(error))

    def close(self) -> None:
        """Stop waiting for the leader's reports (their threads end within a poll)."""
        self._closing.set()

    def _end_what_the_state_ended(self) -> None:
        """The run followed ended in the shared state, and its end was not heard (dropped,
        or its leader died and the next one marked it failed): say so from its row."""
        watched = self._watch.run
        if watched is None or watched.run_id in self._reporting:
            return
        rows = [r for r in self.state.recent_runs(20) if r.run_id == watched.run_id]
        if rows and rows[0].finished_at is not None:
            self.relay(finished_from_row(rows[0]))

    async def follow_the_leader(self) -> None:
        """Relay the leader's run events until cancelled; a lost connection is opened again."""
        from order_export_tui.state.pg_run_events import RunEventListener

        while True:
            try:
                listener = await asyncio.to_thread(RunEventListener, self.location)
            except Exception as error:  # the database is gone for now: try again
                log.warning("standby: cannot hear the leader's runs: %s", error)
                await asyncio.sleep(2.0)
                continue
            try:
                while True:
                    texts = await asyncio.to_thread(listener.take, REFRESH_SECONDS)
                    for text in texts:
                        event = decode_run_event(text)
                        if event is not None:
                            self.relay(event)
                    if not texts:
                        self._end_what_the_state_ended()
            finally:
                await asyncio.to_thread(listener.close)


def standby_control(
    settings: Settings,
    location: PostgresLocation,
    *,
    since: str,
    members: Callable[[], list[Any]],
) -> tuple[StandbyControl, StateStore]:
    """The standby's control over its own connection to the shared state (closed by the
    caller) and a service assembled, never started."""
    from order_export_tui.service.export_service import assemble_service

    state = StateStore(location)
    service, intake_state = assemble_service(settings, state, realtime=False)
    assert intake_state is None
    control = StandbyControl(service, state, role="daemon", since=since, location=location)
    control.cluster_members = members
    return control, state
