"""What a verify found and did, as plain data (interfaces.md §8): the answer of
`ExportControl.verify`, the event `VerifyFinished`, what `order-export verify` prints and
what monitoring reads. Dataclasses with plain fields, so the control socket's codec carries
them as they are."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from order_export_tui.engine.drift import Drift
from order_export_tui.logsafe import escape_for_log
from order_export_tui.state import VerifyRow

KINDS = ("missing", "different", "extra")


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One difference: `field`, `platform` and `erp` are None unless the kind is `different`."""

    order_id: str
    kind: str
    field: str | None = None
    platform: str | int | float | None = None
    erp: str | int | float | None = None

    @classmethod
    def of(cls, drift: Drift) -> DriftItem:
        return cls(drift.order_id, drift.kind, drift.field, drift.platform, drift.erp)

    def as_json(self) -> dict[str, object]:
        return {
            "order_id": self.order_id,
            "kind": self.kind,
            "field": self.field,
            "platform": self.platform,
            "erp": self.erp,
        }

    def describe(self) -> str:
        """What the difference is, in words (after the order id and kind)."""
        if self.kind == "missing":
            return "the ERP has it, the platform does not"
        if self.kind == "extra":
            return "the platform holds it, the ERP does not list it"
        return f"{self.field}: platform {_shown(self.platform)}, ERP {_shown(self.erp)}"


def _shown(value: str | int | float | None) -> str:
    if value is None:
        return "(not a number)"
    if isinstance(value, str):
        return '""' if not value else repr(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class VerifyAnswer:
    """One verify: `started` false when it could not start (`message` says why). `drift` is
    what the read found; `repaired` the drifted orders a repair fixed and a second read
    confirmed; `remaining` the drift left (the second read's, after a repair); `error` why
    the platform's copy (or the ERP) could not be read: never in sync then."""

    started: bool
    message: str
    checked: int = 0
    drift: tuple[DriftItem, ...] = ()
    repaired: tuple[str, ...] = ()
    remaining: tuple[DriftItem, ...] = ()
    error: str | None = None
    repair_run_id: int | None = None
    finished_at: str = ""  # ISO 8601 with offset
    trigger: str = "manual"

    @property
    def in_sync(self) -> bool:
        """The copy is true: read, and no drift left."""
        return self.started and self.error is None and not self.remaining

    @property
    def drifting_orders(self) -> int:
        """Orders the drift left unrepaired (monitoring's `order_export_drift_orders`)."""
        return len({item.order_id for item in self.remaining})

    def outcome(self, destination: str) -> VerifyOutcome:
        """What this verify left, as the state keeps it (a verify that started)."""
        return VerifyOutcome(
            finished_at=self.finished_at,
            trigger=self.trigger,
            checked=self.checked,
            drift_orders=self.drifting_orders,
            readable=self.error is None,
            destination=destination,
            repaired=len(self.repaired),
            repair_run_id=self.repair_run_id,
        )

    def as_json(self) -> dict[str, object]:
        """`verify --json` (interfaces.md §8)."""
        return {
            "checked": self.checked,
            "in_sync": self.in_sync,
            "drift": [item.as_json() for item in self.drift],
            "repaired": list(self.repaired),
        }

    def drift_lines(self) -> list[str]:
        """One line per drift item found: `SO-1  different  total: platform 1.5, ERP 29.2`,
        with `(repaired)` after an order a repair fixed and a second read confirmed."""
        width = max((len(item.order_id) for item in self.drift), default=0)
        fixed = set(self.repaired)
        # A platform's text (an extra order's id, a value) reaches a terminal: escaped.
        return [
            escape_for_log(
                f"{item.order_id:<{width}}  {item.kind:<9}  {item.describe()}"
                + ("  (repaired)" if item.order_id in fixed else "")
            )
            for item in self.drift
        ]

    def summary(self) -> str:
        """The last line: what was checked and what is true now."""
        if not self.started:
            return f"verify not started: {self.message}"
        if self.error is not None:
            return f"verify failed, the copy is not known to be true: {self.error}"
        head = f"checked {self.checked} {_orders(self.checked)}"
        if not self.drift:
            return f"{head}: the platform's copy is true"
        found = f"{head}: {count_orders(self.drift)} drift ({kind_counts(self.drift)})"
        if self.repair_run_id is None:
            return found
        found += f"; run {self.repair_run_id} repaired {len(self.repaired)}"
        if self.remaining:
            return f"{found}; {self.drifting_orders} {_orders(self.drifting_orders)} still drift"
        return f"{found}; the copy is true now"


@dataclass(frozen=True, slots=True)
class VerifyOutcome:
    """What the last verify of a destination's copy left, kept in the state so a restart
    knows it (the drift gauge, `/healthz`, the next scheduled verify, `status --json`'s
    `last_verify`). `drift_orders`: orders left drifting, unrepaired; `readable` false: the
    platform's copy (or the ERP) could not be read, or a repair not confirmed: the copy is
    not known to be true."""

    finished_at: str  # ISO 8601 with offset
    trigger: str
    checked: int
    drift_orders: int
    readable: bool
    destination: str  # the destination's identity (app and account, no secret)
    repaired: int = 0
    repair_run_id: int | None = None

    @classmethod
    def of_row(cls, row: VerifyRow) -> VerifyOutcome:
        return cls(
            finished_at=row.finished_at,
            trigger=row.trigger,
            checked=row.checked,
            drift_orders=row.drift_orders,
            readable=row.readable,
            destination=row.destination,
            repaired=row.repaired,
            repair_run_id=row.repair_run_id,
        )

    def row(self) -> VerifyRow:
        return VerifyRow(
            destination=self.destination,
            finished_at=self.finished_at,
            trigger=self.trigger,
            checked=self.checked,
            drift_orders=self.drift_orders,
            readable=self.readable,
            repaired=self.repaired,
            repair_run_id=self.repair_run_id,
        )

    @property
    def in_sync(self) -> bool:
        return self.readable and self.drift_orders == 0

    def as_json(self) -> dict[str, object]:
        """`status --json`'s `last_verify`."""
        return {
            "finished_at": self.finished_at,
            "trigger": self.trigger,
            "checked": self.checked,
            "in_sync": self.in_sync,
            "drift_orders": self.drift_orders,
            "readable": self.readable,
            "repaired": self.repaired,
            "repair_run_id": self.repair_run_id,
            "destination": self.destination,
        }


def count_orders(items: tuple[DriftItem, ...]) -> str:
    orders = len({item.order_id for item in items})
    return f"{orders} {_orders(orders)}"


def kind_counts(items: tuple[DriftItem, ...]) -> str:
    """`2 missing, 1 different` (orders per kind)."""
    by_kind = Counter(kind for kind, _ in {(item.kind, item.order_id) for item in items})
    return ", ".join(f"{by_kind[kind]} {kind}" for kind in KINDS if by_kind[kind])


def _orders(count: int) -> str:
    return "order" if count == 1 else "orders"
