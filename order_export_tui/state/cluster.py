"""The daemons that share one PostgreSQL state (interfaces.md §10), as `status` shows them.
No driver here: `pg_leadership` reads and writes them."""

from __future__ import annotations

from dataclasses import dataclass

LEADER = "leader"
STANDBY = "standby"


@dataclass(frozen=True, slots=True)
class ClusterDaemon:
    """One daemon with a recent heartbeat: `role` is LEADER or STANDBY, `since` when it
    started (ISO 8601)."""

    host: str
    pid: int
    role: str
    since: str


class LeadershipLostError(Exception):
    """The connection that held leadership is gone: another daemon may lead now."""
