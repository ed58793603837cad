"""Leadership among daemons that share a PostgreSQL state (interfaces.md §10).

The leader is the daemon whose own connection holds a session-level advisory lock: the server
frees it the moment that connection ends (the process killed, its machine gone once the
server's keepalives notice, set short here). Each daemon writes a heartbeat row on the same
connection; `status` lists the rows seen lately, the leader being the one whose backend holds
the lock. A leader checks its connection every `HEARTBEAT_SECONDS` with a bounded statement:
when the check fails it must stop at once (`LeadershipLostError`), since the lock may already
be another's.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Any

import psycopg

from order_export_tui.state.cluster import LEADER, STANDBY, ClusterDaemon, LeadershipLostError
from order_export_tui.state.errors import StateUnusableError
from order_export_tui.state.location import PostgresLocation

# pg_try_advisory_lock(int, int): "oe" and 1; pg_locks shows them as classid and objid.
LEADER_LOCK = (0x6F65, 1)
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 15.0  # a heartbeat older than this is a daemon that is gone
PROBE_TIMEOUT_MS = 4000
# The server drops a silent leader's session (and its lock) after about 5 + 2 * 3 seconds.
_SESSION_SETTINGS = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
    f"SET statement_timeout = {PROBE_TIMEOUT_MS}",
)
_HOLDERS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    f" AND classid = {LEADER_LOCK[0]} AND objid = {LEADER_LOCK[1]} AND objsubid = 2"
)


class Leadership:
    """This daemon's place in the cluster, on a connection of its own."""

    def __init__(self, location: PostgresLocation, *, since: str) -> None:
        self.location = location
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.since = since
        self.leading = False
        self._lock = threading.Lock()  # the heartbeat thread and the caller share the connection
        self._connection = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            connection = psycopg.connect(
                self.location.url,
                password=self.location.password,
                autocommit=True,
                connect_timeout=10,
                application_name="order-export leadership",
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
            )
            for statement in _SESSION_SETTINGS:
                connection.execute(statement)
        except psycopg.Error as error:
            shown = self.location.shown
            problem = f"{shown}: cannot reach the state database: {error}"
            raise StateUnusableError(shown, problem) from None
        return connection

    def try_lead(self) -> bool:
        """Take the leader's lock if nobody holds it; True when this daemon leads now."""
        with self._lock:
            try:
                row = self._connection.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", LEADER_LOCK
                ).fetchone()
            except psycopg.Error:
                self._reconnect_as_standby()
                return False
            self.leading = bool(row and row[0])
            return self.leading

    def beat(self) -> None:
        """Say this daemon is alive (and, for a leader, check that its lock's connection
        still stands). A leader whose check fails raises `LeadershipLostError`; a standby
        connects again."""
        with self._lock:
            try:
                self._connection.execute(
                    "INSERT INTO cluster_daemon (host, pid, backend_pid, since, seen_at)"
                    " VALUES (%s, %s, pg_backend_pid(), %s, now())"
                    " ON CONFLICT (host, pid) DO UPDATE SET backend_pid = excluded.backend_pid,"
                    " seen_at = excluded.seen_at",
                    (self.host, self.pid, self.since),
                )
            except psycopg.Error as error:
                if self.leading:
                    self.leading = False
                    raise LeadershipLostError(str(error)) from None
                self._reconnect_as_standby()

    def _reconnect_as_standby(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._connection.close()
        with contextlib.suppress(StateUnusableError):
            self._connection = self._connect()

    def leader(self) -> ClusterDaemon | None:
        """The daemon that leads now, if it wrote a heartbeat."""
        return next((d for d in self.members() if d.role == LEADER), None)

    def members(self) -> list[ClusterDaemon]:
        with self._lock:
            try:
                return read_members(self._connection)
            except psycopg.Error:
                return []

    def close(self) -> None:
        with self._lock, contextlib.suppress(psycopg.Error):
            self._connection.execute(
                "DELETE FROM cluster_daemon WHERE host = %s AND pid = %s", (self.host, self.pid)
            )
        with contextlib.suppress(psycopg.Error):
            self._connection.close()  # frees the lock, if held
        self.leading = False


def read_members(connection: psycopg.Connection[Any]) -> list[ClusterDaemon]:
    rows = connection.execute(
        f"SELECT host, pid, since, backend_pid IN ({_HOLDERS}) FROM cluster_daemon"
        f" WHERE seen_at > now() - interval '{STALE_SECONDS} seconds'"
        # A daemon that died took its connection with it: gone at once, not after 15 s.
        " AND backend_pid IN (SELECT pid FROM pg_stat_activity)"
        " ORDER BY since, host, pid"
    ).fetchall()
    return [
        ClusterDaemon(host, int(pid), LEADER if leads else STANDBY, since)
        for host, pid, since, leads in rows
    ]


def read_cluster(location: PostgresLocation) -> list[ClusterDaemon]:
    """The daemons seen lately (for `status` where no daemon runs on this machine)."""
    try:
        with psycopg.connect(
            location.url, password=location.password, autocommit=True, connect_timeout=10
        ) as connection:
            return read_members(connection)
    except psycopg.Error:
        return []
