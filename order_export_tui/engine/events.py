"""The plain event objects the engine reports through; the TUI, the daemon, run logs and
tests are all subscribers of the same stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

# What became of one order of a run limited to chosen ids (resend, retry).
SENT = "sent"  # confirmed by the destination
UNCHANGED = "unchanged"  # the destination already holds this very document (retry only)
NOT_FOUND = "not_found"  # not in the ERP
REFUSED = "refused"  # not sent: the destination refused it, or it breaks the order shape
NOT_SENT = "not_sent"  # the run failed or was cancelled before the order was confirmed
CONFIRMED = frozenset({SENT, UNCHANGED})


@dataclass(slots=True)
class RunCounts:
    read: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    retried: int = 0
    skipped: int = 0
    cancelled: int = 0  # orders sent as cancelled: the ERP no longer lists them (§7)

    def as_dict(self) -> dict[str, int]:
        # Field by field: dataclasses.asdict deep-copies each value, ~10 us a batch.
        return {
            "read": self.read,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "retried": self.retried,
            "skipped": self.skipped,
            "cancelled": self.cancelled,
        }


@dataclass(frozen=True, slots=True)
class OrderResult:
    """One chosen order's outcome: `status` is one of SENT ... NOT_SENT, `reason` says why."""

    order_id: str
    status: str
    reason: str

    @property
    def confirmed(self) -> bool:
        return self.status in CONFIRMED

    def as_json(self) -> dict[str, str]:
        return {"order_id": self.order_id, "status": self.status, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RunReport:
    run_id: int
    trigger: str
    outcome: str
    started_at: datetime
    finished_at: datetime
    counts: dict[str, int]
    error: str | None
    log_file: str | None
    # A run limited to chosen ids (resend, retry): each id's outcome, in id order.
    orders: tuple[OrderResult, ...] = ()

    @property
    def duration_seconds(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    def as_json(self) -> dict[str, Any]:
        """The `run --json` object of interfaces.md §1."""
        return {
            "run_id": self.run_id,
            "outcome": self.outcome,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_seconds": self.duration_seconds,
            "counts": dict(self.counts),
            "error": self.error,
            "log_file": self.log_file,
            "trigger": self.trigger,
            **({"orders": [order.as_json() for order in self.orders]} if self.orders else {}),
        }


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What a run records of the settings it ran with; no secret (nor any secret's name)."""

    webstore: str = ""
    erp_source: str = ""
    destination_app: str = ""
    batch_size: int = 0
    max_days_to_export: int = 0
    max_retries: int = 0
    max_retry_interval_seconds: int = 0
    max_items_to_skip: int = 0
    max_archived_log_files: int = 0

    def log_items(self) -> list[tuple[str, object]]:
        """(settings key, value) pairs, as the run log writes them."""
        return [
            ("webstore", self.webstore),
            ("erp.source", self.erp_source),
            ("destination.app", self.destination_app),
            ("task.batch_size", self.batch_size),
            ("task.max_days_to_export", self.max_days_to_export),
            ("task.max_retries", self.max_retries),
            ("task.max_retry_interval_seconds", self.max_retry_interval_seconds),
            ("task.max_items_to_skip", self.max_items_to_skip),
            ("task.max_archived_log_files", self.max_archived_log_files),
        ]


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: int
    trigger: str
    started_at: datetime
    window_start: datetime
    total: int | None
    settings: RunSettings = field(default_factory=RunSettings)


@dataclass(frozen=True, slots=True)
class BatchStarted:
    run_id: int
    batch_no: int
    size: int


@dataclass(frozen=True, slots=True)
class BatchFinished:
    run_id: int
    batch_no: int
    size: int
    sent: int
    processed: int
    total: int | None
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    run_id: int | None
    what: str
    retry: int
    delay_seconds: float
    error: str


@dataclass(frozen=True, slots=True)
class ItemSkipped:
    run_id: int | None
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderNotFound:
    """A chosen order the ERP does not have (a skipped one leaves the skipped list)."""

    run_id: int
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CancelRequested:
    run_id: int


@dataclass(frozen=True, slots=True)
class RunFinished:
    report: RunReport


EngineEvent = (
    RunStarted
    | BatchStarted
    | BatchFinished
    | RetryScheduled
    | ItemSkipped
    | OrderNotFound
    | CancelRequested
    | RunFinished
)
