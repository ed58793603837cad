"""The process's health, built in one place: the webhook's `GET /healthz`, monitoring's
`GET /healthz` and its gauges all answer from the same `HealthSnapshot`, so they cannot
disagree (interfaces.md §4 and §6).

As states and counts only: whoever can reach those ports reads them, so a snapshot holds no
error text (which can name users and hosts), no address and no variable name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from order_export_tui.service.events import DELIVERY_OK, FAILED
from order_export_tui.service.verify_answer import VerifyOutcome
from order_export_tui.state import StateStore

# The oldest queued real-time event may wait this long before /healthz says unhealthy.
MAX_QUEUE_WAIT = timedelta(minutes=5)
# A scheduled run that has not started this long after it was due makes /healthz unhealthy.
OVERDUE_GRACE = timedelta(minutes=5)

DESTINATION_OK = "ok"
DESTINATION_FAILING = "failing"


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """The scheduler, the real-time queue and the destination at one moment; `problems` say
    why the process is unhealthy (none while healthy)."""

    problems: tuple[str, ...]
    schedule: str
    next_run: datetime | None
    run_in_progress: bool
    intake_listening: bool
    queue: dict[str, int]  # queued, held, delivered, skipped
    destination_app: str
    delivery: dict[str, Any] | None  # real-time delivery's state; None without a webhook
    skipped_orders: int
    last_success_at: datetime | None
    drift_orders: int = 0  # what the last verify left unrepaired
    last_verify_at: datetime | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        return "ok" if self.healthy else "unhealthy"

    @property
    def destination_state(self) -> str:
        """Failing exactly while real-time delivery fails; ok again once it recovers."""
        if self.delivery is not None and self.delivery.get("state") != DELIVERY_OK:
            return DESTINATION_FAILING
        return DESTINATION_OK

    def _next_run_text(self) -> str | None:
        return None if self.next_run is None else self.next_run.isoformat(timespec="seconds")

    def webhook_answer(self) -> dict[str, object]:
        """What the webhook intake's `GET /healthz` answers (503 unless `status` is "ok")."""
        return {
            "status": self.status,
            "problems": list(self.problems),
            "scheduler": {
                "schedule": self.schedule,
                "next_run": self._next_run_text(),
                "run_in_progress": self.run_in_progress,
            },
            "intake": {
                "listening": self.intake_listening,
                "queued": self.queue.get("queued", 0),
                "held": self.queue.get("held", 0),
                "delivered": self.queue.get("delivered", 0),
                "skipped": self.queue.get("skipped", 0),
            },
            "destination": {"app": self.destination_app, "state": self.destination_state},
            "delivery": self.delivery,
        }

    def monitoring_answer(self) -> dict[str, object]:
        """What monitoring's `GET /healthz` answers (503 unless `status` is "ok")."""
        return {
            "status": self.status,
            "problems": list(self.problems),
            "run_in_progress": self.run_in_progress,
            "next_run": self._next_run_text(),
            "queue": {"queued": self.queue.get("queued", 0), "held": self.queue.get("held", 0)},
        }


def build_health(
    state: StateStore,
    *,
    now: datetime,
    schedule: str,
    next_run: datetime | None,
    run_in_progress: bool,
    destination_app: str,
    intake_listening: bool,
    delivery: dict[str, Any] | None,
    last_verify: VerifyOutcome | None = None,
) -> HealthSnapshot:
    """The snapshot, with the problems of interfaces.md §6: the last run failed, a scheduled
    run is overdue, a real-time event has waited too long, or real-time delivery fails."""
    problems = []
    last = state.last_finished_run()
    if last is not None and last.outcome == FAILED:
        problems.append(
            f"the last run failed (run {last.run_id}, finished {last.finished_at});"
            " its log file has the error"
        )
    if next_run is not None and not run_in_progress and now - next_run > OVERDUE_GRACE:
        problems.append(
            f"the scheduled run due at {next_run.isoformat(timespec='seconds')} has not started"
        )
    oldest = state.oldest_queued_event_at()
    if oldest is not None:
        waited = now - datetime.fromisoformat(oldest)
        if waited > MAX_QUEUE_WAIT:
            minutes = int(waited.total_seconds() // 60)
            problems.append(f"the oldest queued real-time event has waited {minutes} minutes")
    if delivery is not None and delivery.get("state") != DELIVERY_OK:
        # The error text stays in the log: whoever reaches these ports may not read it.
        problems.append("real-time delivery is failing; its error is in the log")
    problems.extend(verify_problems(last_verify))
    last_success = state.last_success_at()
    return HealthSnapshot(
        problems=tuple(problems),
        schedule=schedule,
        next_run=next_run,
        run_in_progress=run_in_progress,
        intake_listening=intake_listening,
        queue=dict(state.event_counts()),
        destination_app=destination_app,
        delivery=delivery,
        skipped_orders=state.skipped_count(),
        last_success_at=None if last_success is None else datetime.fromisoformat(last_success),
        drift_orders=0 if last_verify is None else last_verify.drift_orders,
        last_verify_at=None
        if last_verify is None
        else datetime.fromisoformat(last_verify.finished_at),
    )


def verify_problems(last_verify: VerifyOutcome | None) -> list[str]:
    """interfaces.md §8: unhealthy while the last verify could not read the platform's copy
    or left drift unrepaired (the next verify that finds the copy true clears it)."""
    if last_verify is None:
        return []
    if not last_verify.readable:
        # The error text stays in the log and the verify's answer.
        return [f"the last verify ({last_verify.finished_at}) could not read the platform's copy"]
    if last_verify.drift_orders:
        return [
            f"the last verify ({last_verify.finished_at}) left"
            f" {last_verify.drift_orders} orders drifting from the ERP"
        ]
    return []
