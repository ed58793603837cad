"""The demo ERP's SQLite schema: customers, items, sales headers and lines, shipments."""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

_ADDRESS_COLUMNS = ("line1", "line2", "city", "region", "postcode", "country")


def _address_columns(prefix: str) -> str:
    return ",\n    ".join(f"{prefix}_{name} TEXT NOT NULL" for name in _ADDRESS_COLUMNS)


# WITHOUT ROWID keeps each table clustered on its key: the reader's keyset pages over
# sales_header and its range reads of sales_line are then sequential.
_SCHEMA = f"""
CREATE TABLE erp_info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE customer (
    customer_no TEXT PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    {_address_columns("address")},
    modified_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE item (
    item_no TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    unit_price REAL NOT NULL,
    tax_rate REAL NOT NULL,
    modified_at TEXT NOT NULL,
    product_url TEXT NOT NULL DEFAULT '',
    image_url TEXT NOT NULL DEFAULT '',
    categories TEXT NOT NULL DEFAULT '[]'  -- JSON list of texts
) WITHOUT ROWID;
CREATE TABLE sales_header (
    order_no TEXT PRIMARY KEY,
    order_date_utc TEXT NOT NULL,
    customer_no TEXT NOT NULL,
    sell_to_email TEXT NOT NULL,
    sell_to_first_name TEXT NOT NULL,
    sell_to_last_name TEXT NOT NULL,
    currency TEXT NOT NULL,
    shipping_method TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    subtotal REAL NOT NULL,
    discount REAL NOT NULL,
    shipping_cost REAL NOT NULL,
    tax REAL NOT NULL,
    total REAL NOT NULL,
    {_address_columns("bill_to")},
    {_address_columns("ship_to")},
    modified_at TEXT NOT NULL,
    coupon_code TEXT NOT NULL DEFAULT '',
    campaign_id TEXT NOT NULL DEFAULT '',
    landing_site TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE sales_line (
    order_no TEXT NOT NULL,
    line_no INTEGER NOT NULL,
    item_no TEXT NOT NULL,
    description TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    unit_price_incl_tax REAL NOT NULL,
    quantity_shipped INTEGER NOT NULL DEFAULT 0,
    modified_at TEXT NOT NULL,
    PRIMARY KEY (order_no, line_no)
) WITHOUT ROWID;
CREATE TABLE shipment (
    shipment_no TEXT PRIMARY KEY,
    order_no TEXT NOT NULL,
    shipped_at TEXT NOT NULL,
    carrier TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    tracking_url TEXT NOT NULL,
    modified_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE shipment_line (
    shipment_no TEXT NOT NULL,
    line_no INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    PRIMARY KEY (shipment_no, line_no)
) WITHOUT ROWID;
"""

# Created after the bulk insert (cheaper than maintaining them row by row).
_INDEXES = """
CREATE INDEX sales_header_order_date ON sales_header (order_date_utc);
CREATE INDEX shipment_order ON shipment
    (order_no, shipped_at, shipment_no, tracking_number, tracking_url);
"""

_HEADER_COLUMNS = 31
_INSERT_CUSTOMER = f"INSERT INTO customer VALUES ({', '.join('?' * 11)})"
_INSERT_ITEM = "INSERT INTO item VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_HEADER = f"INSERT INTO sales_header VALUES ({', '.join('?' * _HEADER_COLUMNS)})"
_INSERT_LINE = "INSERT INTO sales_line VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_SHIPMENT = "INSERT INTO shipment VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_SHIPMENT_LINE = "INSERT INTO shipment_line VALUES (?, ?, ?)"
