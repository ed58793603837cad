"""The state database's tables, and the migrations that bring an older file up to them.

SQLite's dialect (triggers, `WITHOUT ROWID`, `PRAGMA table_info`): another backend has its
own schema module beside its connection.
"""

from __future__ import annotations

import sqlite3

from order_export_tui.state.dates import order_date_key

# 2: exported_order.order_date; 3: exported_order by destination;
# 4: run.cancelled and kept_document (interfaces.md §7: orders sent as cancelled);
# 5: verify_result (each verify's outcome, interfaces.md §8: a restart keeps the last)
SCHEMA_VERSION = 5

# Rows from before exported_order was keyed by destination belong to none yet: the first
# process that opens the file with its settings claims them (`ExportedOrders.claim_unowned`).
UNOWNED_DESTINATION = ""

# The real-time events by state, kept by triggers in the writer's own transaction: every
# status refresh reads it, and counting a year of events there took 23 ms each time.
_TALLY_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS realtime_tally_insert AFTER INSERT ON realtime_event
    BEGIN
        INSERT INTO realtime_tally (status, events) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET events = events + 1;
    END""",
    """CREATE TRIGGER IF NOT EXISTS realtime_tally_update AFTER UPDATE OF status ON realtime_event
    WHEN OLD.status != NEW.status
    BEGIN
        UPDATE realtime_tally SET events = events - 1 WHERE status = OLD.status;
        INSERT INTO realtime_tally (status, events) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET events = events + 1;
    END""",
    """CREATE TRIGGER IF NOT EXISTS realtime_tally_delete AFTER DELETE ON realtime_event
    BEGIN
        UPDATE realtime_tally SET events = events - 1 WHERE status = OLD.status;
    END""",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exported_order (
    destination TEXT NOT NULL, -- the destination's identity: app and account, no secret
    order_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    shipping_status TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    exported_at TEXT NOT NULL,
    run_id INTEGER, -- the last run that sent it, NULL when only ever sent in real time
    document BLOB,
    order_date TEXT,
    customer_email TEXT, -- the e-mail the destination holds the order under
    PRIMARY KEY (destination, order_id)
) WITHOUT ROWID;
-- The document of each order a run exported that is not shipped yet: sent once as cancelled
-- should the ERP stop listing it (interfaces.md §7). A rowid table: documents fit its pages.
CREATE TABLE IF NOT EXISTS kept_document (
    destination TEXT NOT NULL,
    order_id TEXT NOT NULL,
    document BLOB NOT NULL,
    PRIMARY KEY (destination, order_id)
);
CREATE TABLE IF NOT EXISTS run (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    new INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0, -- orders sent as cancelled (interfaces.md §7)
    error TEXT,
    log_file TEXT
);
-- Each verify's outcome (interfaces.md §8), newest by verify_id, per destination identity.
CREATE TABLE IF NOT EXISTS verify_result (
    verify_id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    trigger TEXT NOT NULL,
    checked INTEGER NOT NULL,
    drift_orders INTEGER NOT NULL, -- orders left drifting, unrepaired
    readable INTEGER NOT NULL, -- 0: the platform's copy (or the ERP) could not be read
    repaired INTEGER NOT NULL DEFAULT 0,
    repair_run_id INTEGER
);
CREATE INDEX IF NOT EXISTS verify_result_by_destination ON verify_result (destination, verify_id);
CREATE TABLE IF NOT EXISTS skipped_tick (
    at TEXT NOT NULL,
    trigger TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS realtime_event (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    order_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    finished_at TEXT,
    send_started_at TEXT -- when a send to the destination began, NULL once its outcome is kept
);
CREATE INDEX IF NOT EXISTS realtime_event_by_status ON realtime_event (status, event_id);
CREATE TABLE IF NOT EXISTS realtime_tally (
    status TEXT PRIMARY KEY,
    events INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payment_override (
    order_id TEXT PRIMARY KEY,
    payment_status TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    received_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sent_product (
    scope TEXT NOT NULL,
    sku TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    PRIMARY KEY (scope, sku)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS skipped_order (
    order_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_skipped_at TEXT NOT NULL,
    last_tried_at TEXT NOT NULL,
    run_id INTEGER
) WITHOUT ROWID;
"""


def migrate(db: sqlite3.Connection) -> None:
    """Create what is missing and bring an older file's tables up to this version; call it
    inside a write transaction, so that a crash halfway leaves the file as it was."""
    had_tally = _has_table(db, "realtime_tally")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    for trigger in _TALLY_TRIGGERS:
        db.execute(trigger)
    if not had_tally:  # a database from before the tally: count once
        db.execute(
            "INSERT INTO realtime_tally (status, events)"
            " SELECT status, count(*) FROM realtime_event GROUP BY status"
        )
    columns = {row[1] for row in db.execute("PRAGMA table_info(exported_order)")}
    if "document" not in columns:  # a database from before real-time delivery
        db.execute("ALTER TABLE exported_order ADD COLUMN document BLOB")
    if "order_date" not in columns:  # a database from before the window count
        db.execute("ALTER TABLE exported_order ADD COLUMN order_date TEXT")
        _fill_order_dates(db)
    if "destination" not in columns:  # a database from before destinations were told apart
        _key_by_destination(db)
    db.execute(
        "CREATE INDEX IF NOT EXISTS exported_order_by_date"
        " ON exported_order (destination, order_date)"
    )
    event_columns = {row[1] for row in db.execute("PRAGMA table_info(realtime_event)")}
    if "send_started_at" not in event_columns:  # a database from before re-sends were told
        db.execute("ALTER TABLE realtime_event ADD COLUMN send_started_at TEXT")
    _add_run_cancelled(db)
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        " WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
        (str(SCHEMA_VERSION),),
    )


def _add_run_cancelled(db: sqlite3.Connection) -> None:
    """Version 4: each run's count of orders sent as cancelled (0 for the runs before it)."""
    run_columns = {row[1] for row in db.execute("PRAGMA table_info(run)")}
    if "cancelled" not in run_columns:
        db.execute("ALTER TABLE run ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0")


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _fill_order_dates(db: sqlite3.Connection) -> None:
    """Order dates of the rows that keep their document (those sent in real time), in
    the migration's transaction: a crash leaves the file as it was, and the next open
    migrates it again. Rows a run exported keep no document: the next complete run fills
    theirs as it reads them (`record_batch`'s `seen`). A document that is not JSON is
    left alone."""
    rows = db.execute(
        "SELECT order_id, json_extract(CAST(document AS TEXT), '$.order_date')"
        " FROM exported_order WHERE document IS NOT NULL"
        " AND json_valid(CAST(document AS TEXT))"
    ).fetchall()
    dated = [(key, order_id) for order_id, value in rows if (key := order_date_key(value))]
    db.executemany("UPDATE exported_order SET order_date = ? WHERE order_id = ?", dated)


def _key_by_destination(db: sqlite3.Connection) -> None:
    """Schema 3: `exported_order` keyed by (destination, order id), with the e-mail each
    order was confirmed under. SQLite cannot change a primary key in place: the table is
    built again, in the migration's transaction. The rows keep everything and belong to no
    destination yet (`UNOWNED_DESTINATION`); the e-mail comes from the kept documents (rows a
    run exported have none: a move between customers needs the e-mail they were sent under,
    so the first change of those orders' e-mail is sent as an update, as before)."""
    db.execute("DROP INDEX IF EXISTS exported_order_by_date")
    db.execute("ALTER TABLE exported_order RENAME TO exported_order_before_destinations")
    statement = next(s for s in _SCHEMA.split(";") if "TABLE IF NOT EXISTS exported_order" in s)
    db.execute(statement)
    db.execute(
        "INSERT INTO exported_order (destination, order_id, content_hash, shipping_status,"
        " payment_status, exported_at, run_id, document, order_date, customer_email)"
        " SELECT ?, order_id, content_hash, shipping_status, payment_status, exported_at,"
        " run_id, document, order_date, CASE WHEN json_valid(CAST(document AS TEXT))"
        " THEN json_extract(CAST(document AS TEXT), '$.customer.email') END"
        " FROM exported_order_before_destinations",
        (UNOWNED_DESTINATION,),
    )
    db.execute("DROP TABLE exported_order_before_destinations")
