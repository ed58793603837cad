"""The one way in: what a screen or a command may ask of the process that runs exports.

`ExportControl` is the interface; its arguments and results are plain data that serialise to
JSON (`service.wire` does it), because it has two implementations: `HostedControl`, the
service in this very process, and `AttachedControl`, a client of a running daemon's control
socket. The dashboard and the command line never know which one they hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from order_export_tui.service.events import ControlEvent
from order_export_tui.service.records import RealtimeEventRecord, RunRecord, SkippedOrder
from order_export_tui.service.verify_answer import VerifyAnswer, VerifyOutcome


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """The process that runs exports: `role` is "daemon" or "tui"."""

    pid: int
    role: str
    since: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The process that ran exports stopped answering (said by an attached client only)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reattached:
    """A process answers on the control socket again (said by an attached client only)."""

    process: ProcessInfo | None


# What `subscribe` delivers: the events of the process that runs exports (`ControlEvent`:
# the engine's and the service's, the same dataclasses whether they come from this process
# or over the socket), and an attached client's news of its connection.
Event = ControlEvent | Disconnected | Reattached
Listener = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class RunInProgress:
    run_id: int
    trigger: str
    started_at: str
    orders_total: int | None
    orders_done: int
    sent: int
    skipped: int
    retried: int
    batch_size: int | None = None
    skip_budget: int | None = None
    log_file: str | None = None
    cancelling: bool = False


@dataclass(frozen=True, slots=True)
class QueueCounts:
    queued: int = 0
    held: int = 0
    delivered: int = 0
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class IntakeInfo:
    """The webhook intake: `state` is "off", "starting" or "listening"."""

    state: str = "off"
    listen: str = ""
    retried: int = 0


@dataclass(frozen=True, slots=True)
class DestinationInfo:
    """The destination whose copy `exported` counts: its app and identity (app and account,
    `settings.destination_identity`), never a secret."""

    app: str = ""
    identity: str = ""


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    process: ProcessInfo | None
    run: RunInProgress | None
    last_run: dict[str, Any] | None  # the finished run's report, as `run --json` prints it
    next_run_at: str | None
    skipped_orders: int
    queue: QueueCounts
    schedule: str = ""
    exported: int = 0
    intake: IntakeInfo = field(default_factory=IntakeInfo)
    scheduler_problem: str | None = None
    destination: DestinationInfo = field(default_factory=DestinationInfo)
    cluster: list[ClusterMember] | None = None  # with a PostgreSQL state only (§10)
    last_verify: VerifyOutcome | None = None  # of the destination's copy, from the state

    def as_json(self) -> dict[str, Any]:
        """The `status --json` object of interfaces.md §1."""
        run = None
        if self.run is not None:
            run = {
                "run_id": self.run.run_id,
                "trigger": self.run.trigger,
                "started_at": self.run.started_at,
                "orders_total": self.run.orders_total,
                "orders_done": self.run.orders_done,
                "sent": self.run.sent,
                "skipped": self.run.skipped,
                "retried": self.run.retried,
            }
        process = None
        if self.process is not None:
            process = {
                "pid": self.process.pid,
                "role": self.process.role,
                "since": self.process.since,
            }
        return {
            "process": process,
            "run": run,
            "last_run": self.last_run,
            "next_run_at": self.next_run_at,
            "skipped_orders": self.skipped_orders,
            "queue": {"queued": self.queue.queued, "held": self.queue.held},
            "schedule": self.schedule,
            "exported_orders": self.exported,
            "destination": {"app": self.destination.app, "identity": self.destination.identity},
            "last_verify": None if self.last_verify is None else self.last_verify.as_json(),
        } | ({} if self.cluster is None else {"cluster": [asdict(m) for m in self.cluster]})


@dataclass(frozen=True, slots=True)
class ClusterMember:
    """A daemon sharing the PostgreSQL state: `role` "leader" or "standby"."""

    host: str
    pid: int
    role: str
    since: str


def cluster_info(daemons: Iterable[Any]) -> list[ClusterMember]:
    """The state's `ClusterDaemon` rows as the control interface's own type."""
    return [ClusterMember(d.host, d.pid, d.role, d.since) for d in daemons]


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to a command: `ok` false says why in `message`."""

    ok: bool
    message: str
    run_id: int | None = None


@dataclass(frozen=True, slots=True)
class SettingsView:
    """The settings as TOML-shaped data; secrets only as variable names and set / missing."""

    path: str
    data: dict[str, Any]  # the file as it is now; the settings in force when it is broken
    secrets: dict[str, str]  # the *_env key -> "set" | "missing"
    revision: str = ""  # names the file's text as read: a save over another text is refused
    problems: list[str] = field(default_factory=list)  # why the file is broken, by key


@dataclass(frozen=True, slots=True)
class SaveAnswer:
    saved: bool
    problems: list[str]  # each "<key>: <problem>", as `order-export check` says it
    needs_restart: list[str] = field(default_factory=list)  # keys applied only after a restart
    changed_since_read: bool = False  # the file is no longer the text the changes were made on


@dataclass(frozen=True, slots=True)
class RunLogFile:
    """One run's log file, as the process that runs exports keeps it: `path` is where that
    process wrote it (the control socket is a Unix socket, so the file is on this machine)."""

    name: str
    path: str
    size: int


class ExportControl(Protocol):
    """What the dashboard and the commands ask of the process that runs exports."""

    @property
    def attached(self) -> bool:
        """True when the exports run in another process (a daemon, another dashboard)."""
        ...

    async def status(self) -> StatusSnapshot: ...

    async def start_run(
        self, trigger: str = "manual", *, only: list[str] | None = None, since: str | None = None
    ) -> Answer:
        """Start a run: `only` these order ids (looked up by id; "resend" sends them even if
        unchanged, "retry" with no ids takes every skipped order), `since` a day
        (YYYY-MM-DD) for a backfill beyond the window."""
        ...

    async def cancel(self) -> Answer: ...

    async def retry_skipped(self, order_ids: list[str] | None = None) -> Answer: ...

    async def recent_runs(self, limit: int = 50) -> list[RunRecord]: ...

    async def skipped_orders(self, limit: int = 500) -> list[SkippedOrder]: ...

    async def recent_events(self, limit: int = 200) -> list[RealtimeEventRecord]:
        """The newest real-time (webhook) events first, with what became of each."""
        ...

    async def read_settings(self) -> SettingsView: ...

    async def run_logs(self) -> list[RunLogFile]:
        """The run log files of the process that runs exports, newest first."""
        ...

    async def save_settings(
        self, changes: dict[str, Any], revision: str | None = None
    ) -> SaveAnswer:
        """Set these dotted keys in the settings file, leaving the rest of it as it is, then
        apply it; refused (`changed_since_read`) when `revision` no longer names the file."""
        ...

    async def verify(self, since: str | None = None, repair: bool = False) -> VerifyAnswer:
        """Read the platform's copy of the window (from `since`, YYYY-MM-DD) and compare it
        with the ERP; with `repair`, send what drifts and read again (interfaces.md §8)."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` (on this event loop) with every event; returns the unsubscriber."""
        ...
