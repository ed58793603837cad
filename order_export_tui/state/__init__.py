"""The state database: what was exported, the run history, the skipped orders, the real-time
queue, what a destination remembers of products, and the lock that says which process drives
exports. Everything callers use is importable from here.

One module per job: `connection` (with `schema`) is the only one that knows SQLite, `postgres`
(with `pg_schema`) the only one that knows PostgreSQL, both behind `backend.StateConnection`
and opened by `opening` where `location` says (a file, or a `postgresql://` URL); each
aggregate (`exported`, `runs`, `skipped`, `realtime`, `product_memory`, `verifies`) writes
through its one transaction helper; `lock` is the process lock; `store` composes the
aggregates into the `StateStore` callers hold. The rows returned here are the database's:
what the control interface sends is the service's own types (`service.records`).
"""

from order_export_tui.state.cluster import ClusterDaemon, LeadershipLostError
from order_export_tui.state.dates import order_date_key
from order_export_tui.state.errors import (
    StateDatabaseCorruptError,
    StateUnusableError,
    StateWriteError,
    StoragePathError,
)
from order_export_tui.state.exported import ExportedOrder
from order_export_tui.state.location import (
    PostgresLocation,
    StateLocation,
    local_anchor,
    state_location,
)
from order_export_tui.state.lock import StateLock, StateLockedError, lock_holder
from order_export_tui.state.product_memory import ProductMemory
from order_export_tui.state.realtime import (
    DELIVERED,
    EXPIRED,
    HELD,
    ORDER_COMPLETED,
    PAYMENT_STATUS,
    QUEUED,
    SKIPPED,
    SUPERSEDED,
    WEBHOOK_PAYLOAD_RETENTION_DAYS,
    RealtimeEvent,
    RealtimeEventRow,
)
from order_export_tui.state.runs import COUNT_NAMES, INTERRUPTED_ERROR, RunRow
from order_export_tui.state.skipped import SkippedOrderRow
from order_export_tui.state.store import StateStore
from order_export_tui.state.verifies import VerifyRow

__all__ = [
    "COUNT_NAMES",
    "DELIVERED",
    "EXPIRED",
    "HELD",
    "INTERRUPTED_ERROR",
    "ORDER_COMPLETED",
    "PAYMENT_STATUS",
    "QUEUED",
    "SKIPPED",
    "SUPERSEDED",
    "WEBHOOK_PAYLOAD_RETENTION_DAYS",
    "ClusterDaemon",
    "ExportedOrder",
    "LeadershipLostError",
    "PostgresLocation",
    "ProductMemory",
    "RealtimeEvent",
    "RealtimeEventRow",
    "RunRow",
    "SkippedOrderRow",
    "StateDatabaseCorruptError",
    "StateLocation",
    "StateLock",
    "StateLockedError",
    "StateStore",
    "StateUnusableError",
    "StateWriteError",
    "StoragePathError",
    "VerifyRow",
    "local_anchor",
    "lock_holder",
    "order_date_key",
    "state_location",
]
