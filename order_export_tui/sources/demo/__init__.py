"""The embedded demo ERP: an ERP-shaped SQLite database, its generator and a streaming reader.

The database looks like a small ERP's: customers, items, sales headers and lines, shipments
and their lines, each with a `modified_at`. Times are stored as UTC ISO 8601 texts
('YYYY-MM-DDTHH:MM:SS+00:00'), so comparing texts compares times and the stored order date
already is the order document's `order_date`.

`schema` is the database, `catalogue` and `tracking` the reference data, `generator` fills
it deterministically from a seed, `reader` (`DemoErpSource`) streams it as order documents
(interfaces.md §3), and `activity` (`ship_order` / `set_payment_status` / `cancel_order`,
and a round of cancellations and refunds: `simulate_activity`) simulates ERP activity
between runs.
"""

from order_export_tui.sources.demo.activity import (
    Activity,
    cancel_order,
    order_numbers,
    set_payment_status,
    ship_order,
    simulate_activity,
)
from order_export_tui.sources.demo.catalogue import DEFECTS
from order_export_tui.sources.demo.generator import ensure_demo_erp, generate_demo_erp
from order_export_tui.sources.demo.reader import DemoErpSource

__all__ = [
    "DEFECTS",
    "Activity",
    "DemoErpSource",
    "cancel_order",
    "ensure_demo_erp",
    "generate_demo_erp",
    "order_numbers",
    "set_payment_status",
    "ship_order",
    "simulate_activity",
]
