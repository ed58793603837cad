"""Leading a cluster of daemons that share a PostgreSQL state (interfaces.md §10).

A daemon waits as a standby until it holds the leader's lock (trying every few seconds, and
serving the webhook intake meanwhile: `standby`), then runs the service as a single daemon
does. A heartbeat thread keeps its row fresh; when the leader cannot confirm its connection
for `LOST_AFTER_SECONDS` it stops at once: the daemon execs itself again (every connection
and send in flight ends with the old image) and comes back as a standby, waiting for the
database if it is gone. The server frees a silent leader's lock only after that, so two
daemons never send at the same time.
`run` and the dashboard do not wait: while another daemon leads they are refused, naming it.
With a file path none of this exists.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from order_export_tui.clock import local_now
from order_export_tui.service.control import ClusterMember, cluster_info
from order_export_tui.service.export_service import ExportService
from order_export_tui.service.forwarding import ForwardedCommands
from order_export_tui.service.hosted import HostedControl
from order_export_tui.service.run_relay import publish_runs
from order_export_tui.service.standby import serve_intake_until_leading
from order_export_tui.settings import Settings
from order_export_tui.state import (
    ClusterDaemon,
    PostgresLocation,
    StateLockedError,
    StateStore,
    StateUnusableError,
    state_location,
)
from order_export_tui.state.cluster import LEADER

if TYPE_CHECKING:
    from order_export_tui.state.pg_leadership import Leadership

log = logging.getLogger("order_export.daemon")

LOST_AFTER_SECONDS = 6.0  # under the ~11 s after which the server frees a silent leader's lock
EXIT_LEADERSHIP_LOST = 75  # EX_TEMPFAIL: start again (as a standby)
WAIT_FOR_DATABASE_SECONDS = 2.0


def _stop_now() -> None:
    logging.shutdown()
    os._exit(EXIT_LEADERSHIP_LOST)


def _start_again() -> None:
    """The daemon drops everything it was doing at once (exec closes every connection and
    ends every send in flight) and starts again as this same command: a standby until it
    holds the lock again, waiting for the database if it is gone."""
    logging.shutdown()
    try:
        os.execv(sys.executable, sys.orig_argv)
    except OSError:
        os._exit(EXIT_LEADERSHIP_LOST)


@contextmanager
def leadership(
    settings: Settings,
    *,
    role: str,
    since: str,
    on_lost: Callable[[], None] | None = None,
) -> Iterator[Callable[[], list[ClusterDaemon]] | None]:
    """Lead before the service starts (a no-op with a file path, yielding None); yields what
    lists the cluster for `status`. The daemon waits as a standby; `run` and the dashboard
    raise `StateLockedError` while another daemon leads."""
    location = state_location(settings)
    if not isinstance(location, PostgresLocation):
        yield None
        return
    from order_export_tui.state.pg_leadership import HEARTBEAT_SECONDS, Leadership

    if on_lost is None:
        on_lost = _start_again if role == "daemon" else _stop_now
    member = Leadership(location, since=since)
    try:
        _take_the_lead(member, settings, role)
        beating = threading.Event()
        last_ok = [time.monotonic()]

        def heartbeat() -> None:
            while not beating.wait(HEARTBEAT_SECONDS):
                try:
                    member.beat()
                    last_ok[0] = time.monotonic()
                except Exception as error:  # whatever it is, the lock may be another's now
                    _lost(f"its heartbeat failed: {error}")
                    return

        def watchdog() -> None:
            while not beating.wait(0.5):
                silent = time.monotonic() - last_ok[0]
                if silent > LOST_AFTER_SECONDS:
                    _lost(f"its database connection was silent for {silent:.0f} s")
                    return

        def _lost(why: str) -> None:
            if beating.is_set():
                return
            beating.set()
            log.critical("leadership lost (%s): stopping at once", why)
            on_lost()

        threads = [
            threading.Thread(target=heartbeat, name="leadership-heartbeat", daemon=True),
            threading.Thread(target=watchdog, name="leadership-watchdog", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            yield member.members
        finally:
            beating.set()
    finally:
        member.close()


def _take_the_lead(member: Leadership, settings: Settings, role: str) -> None:
    member.beat()
    if member.try_lead():
        log.info("leading the cluster (%s pid %d)", member.host, member.pid)
        return
    leader = member.leader()
    who = _describe(leader)
    if role != "daemon":
        raise StateLockedError(member.location.shown, f"{who}, the cluster's leader")
    log.info("standby: %s leads; taking over when it stops", who)
    asyncio.run(serve_intake_until_leading(settings, member))
    log.info("leading the cluster: took over from %s", who)


def _describe(leader: ClusterDaemon | None) -> str:
    if leader is None:
        return "another daemon"
    return f"{leader.host} pid {leader.pid}, since {leader.since}"


def cluster_of(settings: Settings) -> list[ClusterMember] | None:
    """The daemons sharing the state as `status` shows them; None with a file path."""
    location = state_location(settings)
    if not isinstance(location, PostgresLocation):
        return None
    from order_export_tui.state.pg_leadership import read_cluster

    return cluster_info(read_cluster(location))


def continue_schedule(service: ExportService, state: StateStore, now: datetime) -> None:
    """A new leader continues the cluster's schedule from the last run any daemon started, so
    a tick the dead leader would have run during the takeover runs at once instead of one
    interval (or a day) late. With a file path the schedule starts with the process."""
    task = service.settings.task
    jobs = service.scheduler.jobs
    runs = state.recent_runs(1)
    if not (task.run_on_schedule and jobs and runs):
        return
    last = datetime.fromisoformat(runs[0].started_at).astimezone()
    if task.run_time:
        hour, minute = (int(part) for part in task.run_time.split(":"))
        due = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if due > now:
            due -= timedelta(days=1)
        if last >= due:
            return  # today's (or the last) scheduled run happened
    else:
        due = last + timedelta(minutes=task.run_interval_minutes)
    # `schedule` keeps naive local times.
    wall = max(due, now).astimezone().replace(tzinfo=None)
    for job in jobs:
        if job.next_run is None or wall < job.next_run:
            job.next_run = wall


def as_leader(control: HostedControl, settings: Settings) -> None:
    """What a leader's service does beyond a single daemon's: it continues the cluster's
    schedule, its delivery hears (by NOTIFY) of events any daemon took, and it carries out
    the commands given on other machines (`forwarding`)."""
    service = control.service
    continue_schedule(service, control.state, local_now())
    location = state_location(settings)
    if not isinstance(location, PostgresLocation):
        return
    if service.realtime is not None:
        from order_export_tui.state.pg_events import follow_new_events

        service.realtime.event_feed = partial(follow_new_events, location)
    service.companions.append(ForwardedCommands(control, location).serve)
    service.companions.append(publish_runs(control, location))


def open_state(settings: Settings, role: str) -> StateStore:
    """The state store; a daemon on a PostgreSQL state waits for the server (restarting, or
    not up yet), saying why once per reason, where a file path or a command fails at once."""
    location = state_location(settings)
    if role != "daemon" or not isinstance(location, PostgresLocation):
        return StateStore(location)
    said = ""
    while True:
        try:
            return StateStore(location)
        except StateUnusableError as error:
            if str(error) != said:
                said = str(error)
                log.warning("waiting for the state database: %s", said)
            time.sleep(WAIT_FOR_DATABASE_SECONDS)


def describe_state(settings: Settings) -> str | None:
    """`check --connect`'s line for a PostgreSQL state: reached, and whether a daemon leads
    it (None with a file path). Raises `StateUnusableError` when it cannot be used."""
    location = state_location(settings)
    if not isinstance(location, PostgresLocation):
        return None
    from order_export_tui.state.pg_leadership import read_cluster

    StateStore(location).close()  # reached, its tables made or migrated
    daemons = read_cluster(location)
    leader = next((d for d in daemons if d.role == LEADER), None)
    standbys = sum(1 for d in daemons if d.role != LEADER)
    led = "no daemon leads it" if leader is None else f"led by {_describe(leader)}"
    return f"state: {location.shown}, {led}; {standbys} standby daemon(s)"
