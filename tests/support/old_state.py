"""State files as earlier releases wrote them, made from a current one: what the migrations
must bring up to date."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# `exported_order` as each schema version had it (before version 3 keyed it by destination).
_OLD_EXPORTED_ORDER = {
    1: """CREATE TABLE exported_order (
        order_id TEXT PRIMARY KEY,
        content_hash TEXT NOT NULL,
        shipping_status TEXT NOT NULL,
        payment_status TEXT NOT NULL,
        exported_at TEXT NOT NULL,
        run_id INTEGER,
        document BLOB
    ) WITHOUT ROWID""",
    2: """CREATE TABLE exported_order (
        order_id TEXT PRIMARY KEY,
        content_hash TEXT NOT NULL,
        shipping_status TEXT NOT NULL,
        payment_status TEXT NOT NULL,
        exported_at TEXT NOT NULL,
        run_id INTEGER,
        document BLOB,
        order_date TEXT
    ) WITHOUT ROWID""",
}
OLD_COLUMNS = {
    1: [
        "order_id",
        "content_hash",
        "shipping_status",
        "payment_status",
        "exported_at",
        "run_id",
        "document",
    ],
}
OLD_COLUMNS[2] = [*OLD_COLUMNS[1], "order_date"]


def make_old_state_file(path: Path, version: int) -> None:
    """Turn the state file at `path` into one of schema `version` (1 or 2): its exported
    orders (of every destination) in that version's table, and that version in `meta`."""
    columns = ", ".join(OLD_COLUMNS[version])
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE exported_order RENAME TO exported_order_now")
        db.execute("DROP INDEX IF EXISTS exported_order_by_date")
        db.execute(_OLD_EXPORTED_ORDER[version])
        db.execute(
            f"INSERT INTO exported_order ({columns}) SELECT {columns} FROM exported_order_now"
        )
        db.execute("DROP TABLE exported_order_now")
        if version == 2:
            db.execute("CREATE INDEX exported_order_by_date ON exported_order (order_date)")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    db.close()
    with sqlite3.connect(path) as db:
        found = [row[1] for row in db.execute("PRAGMA table_info(exported_order)")]
    db.close()
    assert found == OLD_COLUMNS[version]
