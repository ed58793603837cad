"""The outcome of each verify of the platform's copy (interfaces.md §8), kept so that a
restarted daemon knows the last one: its gauges, `/healthz` and the next scheduled verify
start from it rather than from nothing."""

from __future__ import annotations

from dataclasses import dataclass

from order_export_tui.state.backend import StateConnection

# Verifies kept per destination: the newest is the one read, a few before it help a person.
KEPT_PER_DESTINATION = 100


@dataclass(frozen=True, slots=True)
class VerifyRow:
    """One verify as the `verify_result` table holds it. `drift_orders`: orders the verify
    left drifting (unrepaired); `readable`: the platform's copy (and the ERP) could be read
    (false: nothing is known of the copy, never "in sync")."""

    destination: str
    finished_at: str  # ISO 8601 with offset
    trigger: str
    checked: int
    drift_orders: int
    readable: bool
    repaired: int = 0
    repair_run_id: int | None = None


class Verifies:
    """The `verify_result` table."""

    def __init__(self, db: StateConnection) -> None:
        self._db = db

    def record(self, row: VerifyRow) -> None:
        """Keep this verify's outcome; older ones of its destination beyond
        `KEPT_PER_DESTINATION` go."""
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO verify_result (destination, finished_at, trigger, checked,"
                " drift_orders, readable, repaired, repair_run_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.destination,
                    row.finished_at,
                    row.trigger,
                    row.checked,
                    row.drift_orders,
                    int(row.readable),
                    row.repaired,
                    row.repair_run_id,
                ),
            )
            db.execute(
                "DELETE FROM verify_result WHERE destination = ? AND verify_id <= ("
                " SELECT verify_id FROM verify_result WHERE destination = ?"
                " ORDER BY verify_id DESC LIMIT 1 OFFSET ?)",
                (row.destination, row.destination, KEPT_PER_DESTINATION),
            )

    def last(self, destination: str) -> VerifyRow | None:
        """The newest verify of this destination's copy, None before any."""
        found = self._db.execute(
            "SELECT destination, finished_at, trigger, checked, drift_orders, readable,"
            " repaired, repair_run_id FROM verify_result WHERE destination = ?"
            " ORDER BY verify_id DESC LIMIT 1",
            (destination,),
        ).fetchone()
        if found is None:
            return None
        return VerifyRow(
            destination=found[0],
            finished_at=found[1],
            trigger=found[2],
            checked=int(found[3]),
            drift_orders=int(found[4]),
            readable=bool(found[5]),
            repaired=int(found[6]),
            repair_run_id=None if found[7] is None else int(found[7]),
        )
