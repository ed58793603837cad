"""Dotdigital's asynchronous imports: the two kinds this destination submits, what their
statuses mean, and how one is waited on.

An import is polled until done, paced by its size and this run's earlier imports
(`pacing`), for at most `dotdigital.import_timeout_seconds`; a cancel ends the wait
at once. One that ends `Failed` is a transient error (submitted again by the caller's retrier);
a status that means the account refused it fails the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from order_export_tui.destinations.base import DestinationError
from order_export_tui.destinations.dotdigital.answers import describe_summary
from order_export_tui.destinations.dotdigital.pacing import ImportPacer
from order_export_tui.destinations.dotdigital.records import IMPORT_PATH
from order_export_tui.transport.retry import Retrier, TransientError
from order_export_tui.transport.waiting import interruptible

CONTACTS_IMPORT_PATH = "/contacts/v3/import"
MAX_CONCURRENT_IMPORTS = 5  # Dotdigital runs at most five imports at once per account
IMPORT_TIMEOUT_SECONDS = 900.0  # dotdigital.import_timeout_seconds


@dataclass(frozen=True, slots=True)
class ImportKind:
    """One of Dotdigital's asynchronous imports: where it goes and what its statuses mean.

    `Failed` means submit again; any other status (`NotStarted`, `Processing`,
    `NotFinished`, or one Dotdigital adds later) is waited on, up to the deadline.
    """

    key: str
    what: str
    submit_path: str
    done: frozenset[str]
    account_refused: frozenset[str]

    def status_path(self, import_id: str) -> str:
        return f"{self.submit_path}/{quote(import_id, safe='')}"


# The spec's example says `Finished`, its enum says `Complete`: either one is done.
INSIGHT_IMPORT = ImportKind(
    key="insight",
    what="Insight data import",
    submit_path=IMPORT_PATH,
    done=frozenset({"Finished", "Complete"}),
    account_refused=frozenset(),
)
CONTACTS_IMPORT = ImportKind(
    key="contacts",
    what="contacts import",
    submit_path=CONTACTS_IMPORT_PATH,
    done=frozenset({"Finished"}),
    account_refused=frozenset({"RejectedByWatchdog", "ExceedsAllowedContactLimit"}),
)

# Asks for an import's report: (kind, import id, retrier) -> the report.
ImportStatus = Callable[[ImportKind, str, Retrier], Awaitable[dict[str, Any]]]


async def wait_for_import(
    kind: ImportKind,
    import_id: str,
    records: int,
    retrier: Retrier,
    *,
    status_of: ImportStatus,
    pacer: ImportPacer,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> dict[str, Any]:
    """Poll the import's status, paced by its size (`ImportPacer`), for at most `timeout`
    seconds; its report once done. Only waiting: a cancel ends it at once."""
    started = clock()
    delay = pacer.first_wait(kind.key, records)
    running_at = 0.0
    while True:
        left = timeout - (clock() - started)
        await interruptible(
            sleep(max(0.0, min(delay, left))),
            retrier.interrupt,
            f"waiting for Dotdigital {kind.what} {import_id}",
        )
        looked_at = clock() - started  # when it was asked, not answered
        report = await status_of(kind, import_id, retrier)
        status = report["status"]
        waited = clock() - started
        if status in kind.done:
            pacer.learn(kind.key, records, running_at, looked_at)
            return report
        running_at = looked_at
        pacer.still_running(kind.key, records, running_at)
        if status in kind.account_refused:
            raise DestinationError(
                f"Dotdigital refused the {kind.what} {import_id}: {status}"
                f"{describe_summary(report)}"
            )
        if status == "Failed":
            raise TransientError(f"Dotdigital {kind.what} {import_id} failed")
        if waited >= timeout:
            raise DestinationError(
                f"Dotdigital {kind.what} {import_id} is still {status!r} after"
                f" {timeout:g}s (dotdigital.import_timeout_seconds); the batch"
                " is sent again by the next run"
            )
        delay = pacer.next_wait(kind.key, records, waited)
