"""`run`, `cancel`, `resend`, `retry` and `verify` given where another daemon leads a
PostgreSQL state (interfaces.md §10): the command is a request row (`state.pg_commands`)
that the leader carries out through its own control, answering in the row; the command line
prints what it would print on the leader (the answer, the run's live progress as the leader
publishes it (`run_relay`), the run's report or the verify's answer) and exits with the same
codes."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from order_export_tui.engine.events import RunFinished, RunReport
from order_export_tui.service import wire
from order_export_tui.service.control import Answer
from order_export_tui.service.hosted import HostedControl
from order_export_tui.service.run_relay import decode_run_event
from order_export_tui.service.verify_answer import VerifyAnswer
from order_export_tui.settings import Settings
from order_export_tui.state import PostgresLocation, StateStore, state_location

if TYPE_CHECKING:
    from order_export_tui.state.pg_run_events import RunEventListener

log = logging.getLogger("order_export.daemon")

CANCEL_WAIT_SECONDS = 15 * 60.0
LAST_EVENTS_SECONDS = 2.0  # after the report: the run's last events, published beside it
LEADER_GONE_GRACE_SECONDS = 10.0  # a run ended without its report: its leader died


class ForwardingError(Exception):
    """The leader did not take the command, or stopped before it finished."""


def leads_elsewhere(settings: Settings) -> PostgresLocation | None:
    """The PostgreSQL state when a daemon (on this machine or another) leads it."""
    location = state_location(settings)
    if not isinstance(location, PostgresLocation):
        return None
    from order_export_tui.state.pg_leadership import read_cluster

    leaders = [d for d in read_cluster(location) if d.role == "leader"]
    return location if leaders else None


def _ask(location: PostgresLocation, command: str, body: dict[str, Any]) -> tuple[int, Answer]:
    from order_export_tui.state.pg_commands import UNTAKEN_SECONDS, submit, wait_for

    request_id = submit(location, command, json.dumps(body))
    text = wait_for(location, request_id, "answer", timeout=UNTAKEN_SECONDS, withdraw=True)
    if text is None:
        raise ForwardingError(
            f"no daemon leading the cluster took the command within {UNTAKEN_SECONDS:.0f} s"
        )
    return request_id, wire.decode(json.loads(text), Answer)


def forward_run(
    location: PostgresLocation,
    trigger: str,
    *,
    only: list[str] | None = None,
    since: str | None = None,
    on_event: Callable[[object], None] | None = None,
) -> RunReport:
    """Have the leader start the run, and wait for its report; `on_event` is given the run's
    events as the leader publishes them (its live progress)."""
    from order_export_tui.state.pg_commands import wait_for
    from order_export_tui.state.pg_run_events import RunEventListener

    listener = None if on_event is None else RunEventListener(location)  # before the request
    try:
        request_id, answer = _ask(
            location, "run", {"trigger": trigger, "only": only, "since": since}
        )
        if not answer.ok or answer.run_id is None:
            raise ForwardingError(answer.message)
        shown = _RunEvents(listener, answer.run_id, on_event)
        ended = _RunEnd(location, answer.run_id)

        def gave_up() -> bool:
            shown.pass_on()
            return ended.long_ago()

        try:
            text = wait_for(location, request_id, "report", timeout=None, gave_up=gave_up)
        finally:
            ended.close()
        if text is None:
            raise ForwardingError(
                f"the leader stopped during run {answer.run_id}; the next leader marks it"
                " failed (interrupted) and its next run sends what was not confirmed"
            )
        report: RunReport = wire.decode(json.loads(text), RunReport)
        shown.finish(report)
        return report
    finally:
        if listener is not None:
            listener.close()


class _RunEvents:
    """Passes on the published events of one run, in order, until its end."""

    def __init__(
        self,
        listener: RunEventListener | None,
        run_id: int,
        on_event: Callable[[object], None] | None,
    ) -> None:
        self._listener = listener
        self._run_id = run_id
        self._on_event = on_event
        self.finished = False

    def pass_on(self, wait: float = 0.0) -> None:
        if self._listener is None or self._on_event is None or self.finished:
            return
        for text in self._listener.take(wait):
            event = decode_run_event(text)
            if getattr(event, "run_id", None) != self._run_id:
                continue  # another run's (or a version this one does not know)
            if isinstance(event, RunFinished):
                self.finished = True
            self._on_event(event)
            if self.finished:
                return

    def finish(self, report: RunReport) -> None:
        """The run's last events (published beside its report), then its end."""
        deadline = time.monotonic() + LAST_EVENTS_SECONDS
        while not self.finished and time.monotonic() < deadline:
            self.pass_on(wait=0.1)
        if self._on_event is not None and not self.finished:
            self.finished = True
            self._on_event(RunFinished(report))


def forward_verify(location: PostgresLocation, since: str | None, repair: bool) -> VerifyAnswer:
    """Have the leader verify, and wait for its answer (as long as that leader leads)."""
    from order_export_tui.state.pg_commands import wait_for

    request_id, answer = _ask(location, "verify", {"since": since, "repair": repair})
    if not answer.ok:
        return VerifyAnswer(False, answer.message)
    leader = _SameLeader(location)
    text = wait_for(location, request_id, "report", timeout=None, gave_up=leader.gone)
    if text is None:
        raise ForwardingError(
            "the leader stopped during the verify; nothing it repaired is lost, verify again"
        )
    return wire.decode(json.loads(text), VerifyAnswer)  # type: ignore[no-any-return]


class _SameLeader:
    """Whether the daemon that leads now stopped leading (it died: its answer never comes)."""

    def __init__(self, location: PostgresLocation) -> None:
        self._location = location
        self._leader = self._current()
        self._checked = time.monotonic()

    def _current(self) -> tuple[str, int, str] | None:
        from order_export_tui.state.pg_leadership import read_cluster

        leaders = [d for d in read_cluster(self._location) if d.role == "leader"]
        return (leaders[0].host, leaders[0].pid, leaders[0].since) if leaders else None

    def gone(self) -> bool:
        now = time.monotonic()
        if now - self._checked < 2.0:
            return False
        self._checked = now
        return self._current() != self._leader


def ask_run(
    location: PostgresLocation,
    trigger: str,
    *,
    only: list[str] | None = None,
    since: str | None = None,
) -> tuple[int, Answer]:
    """Have the leader start the run: the request's id and the leader's answer."""
    return _ask(location, "run", {"trigger": trigger, "only": only, "since": since})


def wait_for_report(
    location: PostgresLocation, request_id: int, run_id: int, stop: threading.Event
) -> RunReport | None:
    """The report of a run the leader started for `request_id`; None if its leader died
    (or once `stop` is set)."""
    from order_export_tui.state.pg_commands import wait_for

    ended = _RunEnd(location, run_id)
    try:
        text = wait_for(
            location,
            request_id,
            "report",
            timeout=None,
            gave_up=lambda: stop.is_set() or ended.long_ago(),
        )
    finally:
        ended.close()
    return None if text is None else wire.decode(json.loads(text), RunReport)


def ask_cancel(location: PostgresLocation) -> Answer:
    """Have the leader cancel its run; its answer (not waiting for the run to stop)."""
    return _ask(location, "cancel", {})[1]


def forward_cancel(location: PostgresLocation) -> str:
    """Have the leader cancel its run, and wait until it stopped; what happened, in a line."""
    _, answer = _ask(location, "cancel", {})
    if not answer.ok or answer.run_id is None:
        return answer.message
    ended = _RunEnd(location, answer.run_id)
    try:
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while time.monotonic() < deadline:
            outcome = ended.outcome()
            if outcome is not None:
                return f"run {answer.run_id} {outcome}"
            time.sleep(0.5)
    finally:
        ended.close()
    return "the run has not stopped yet; it stops at its next batch boundary"


class _RunEnd:
    """Whether a run the leader started has ended (in the run table)."""

    def __init__(self, location: PostgresLocation, run_id: int) -> None:
        self._state = StateStore(location)
        self._run_id = run_id
        self._checked = 0.0
        self._ended_at: float | None = None

    def outcome(self) -> str | None:
        runs = [r for r in self._state.recent_runs(20) if r.run_id == self._run_id]
        return runs[0].outcome if runs and runs[0].finished_at is not None else None

    def long_ago(self) -> bool:
        now = time.monotonic()
        if now - self._checked < 2.0:
            return False
        self._checked = now
        if self._ended_at is None and self.outcome() is not None:
            self._ended_at = now
        return self._ended_at is not None and now - self._ended_at > LEADER_GONE_GRACE_SECONDS

    def close(self) -> None:
        self._state.close()


class ForwardedCommands:
    """The leader's side: carries out the requests other machines' commands put."""

    def __init__(self, control: HostedControl, location: PostgresLocation) -> None:
        self._control = control
        self._location = location
        self._reports: dict[int, int] = {}  # run_id -> the request waiting for its report
        # Runs that finished lately: a short run may end before its request is answered.
        self._finished: dict[int, RunReport] = {}
        self._writes: set[asyncio.Task[None]] = set()
        control.subscribe(self._on_event)

    async def serve(self) -> None:
        from order_export_tui.state.pg_commands import serve_requests

        await serve_requests(self._location, self._carry_out)

    async def _carry_out(self, request_id: int, command: str, body: str) -> None:
        from order_export_tui.state.pg_commands import write

        finished_before = set(self._finished)
        try:
            params = json.loads(body)
            if command == "cancel":
                answer = await self._control.cancel()
            elif command == "verify":  # answered now, carried out beside the other requests
                since, repair = params.get("since"), bool(params.get("repair"))
                self._beside(self._verify(request_id, since, repair))
                answer = Answer(True, "verifying")
            elif command == "run":
                answer = await self._control.start_run(
                    str(params["trigger"]), only=params.get("only"), since=params.get("since")
                )
            else:
                answer = Answer(False, f"unknown command {command!r}")
        except (ValueError, KeyError, TypeError) as error:
            answer = Answer(False, f"a request that could not be read: {error}")
        except Exception as error:  # answered all the same: its caller is not left waiting
            log.error("a command from another machine failed: %s", error)
            answer = Answer(False, f"the leader could not carry it out: {error}")
        report: RunReport | None = None
        if command == "run" and answer.ok:
            if answer.run_id is None:  # it ended while it was being started
                ended = [i for i in self._finished if i not in finished_before]
                answer = replace(answer, run_id=max(ended, default=None))
            report = self._finished.get(answer.run_id or 0)
            if report is None and answer.run_id is not None:
                self._reports[answer.run_id] = request_id
        await write(self._location, request_id, "answer", json.dumps(wire.encode(answer)))
        if report is not None:
            await write(self._location, request_id, "report", json.dumps(wire.encode(report)))

    async def _verify(self, request_id: int, since: str | None, repair: bool) -> None:
        from order_export_tui.state.pg_commands import write

        try:
            result = await self._control.verify(since, repair)
        except Exception as error:  # answered all the same: its caller is not left waiting
            log.error("a verify from another machine failed: %s", error)
            result = VerifyAnswer(False, f"the leader could not carry it out: {error}")
        await write(self._location, request_id, "report", json.dumps(wire.encode(result)))

    def _beside(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _on_event(self, event: object) -> None:
        if not isinstance(event, RunFinished):
            return
        self._finished[event.report.run_id] = event.report
        while len(self._finished) > 20:
            del self._finished[next(iter(self._finished))]
        request_id = self._reports.pop(event.report.run_id, None)
        if request_id is None:
            return
        from order_export_tui.state.pg_commands import write

        text = json.dumps(wire.encode(event.report))
        self._beside(write(self._location, request_id, "report", text))
