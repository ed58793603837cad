"""A probe of one idea for the SQL source's read (issue 23), kept to measure it again: the
server writes each order's document as JSON text, the client only parses it with orjson.

Not the product's read: it builds the documents of `benchmarks/sql_source.py`'s views (text
columns, numeric amounts, integer line numbers, a timestamptz order date) and knows no skip
reasons. `benchmarks/sql_source.py --json-probe` runs it beside the bare read and the source,
and checks (once, untimed) that its documents are the source's, byte for byte once serialised
(key order, 2 against 2.0 included).

The query is the cheapest form found (see docs/source-sql.md): one server-side cursor over
the orders view, each order's lines joined LATERAL and aggregated in line order; text fields
written raw between quotes, and the whole row written with to_json per field only where a
field needs escaping (one to_json over all its texts tells; the raw form is one format()
call, the cheapest builder measured); numerics as their own text with
`+ 0.0` so that 5 reads as 5.0 (a float, as the source gives); quantity as an integer where
the float the source makes of it is integral below 2**53; categories split on the server
(str.strip's whitespace, empty parts dropped). JIT is off for the session: compiling this
query's expressions cost more than it saved.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

ADDRESS = ("line1", "line2", "city", "region", "postcode", "country")
# str.strip()'s whitespace, which the source's `categories` split strips.
_PYTHON_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_SPACE_LITERAL = "E'" + "".join(f"\\u{ord(c):04x}" for c in _PYTHON_SPACE) + "'"
_SPACE_CLASS = "".join(f"\\u{ord(c):04x}" for c in _PYTHON_SPACE)
_ISO_UTC = (
    "CASE WHEN {c} IS NULL OR {c} >= '10000-01-01 00:00:00+00' THEN ''"
    " WHEN date_trunc('second', {c}) = {c}"
    """ THEN to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')"""
    """ ELSE to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') END"""
)

# A document template: ("c", constant JSON text), ("t", text expression), ("o", (key, text
# expression): present only when not empty), ("n", expression giving JSON text as it is).
Piece = tuple[str, Any]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _build(pieces: list[Piece], raw: bool) -> str:
    """SQL writing the pieces: with no text to escape, one format() (NULL is "" there; `%%s`
    because psycopg reads the query's own % signs); else to_json for each text."""
    if raw:
        template, values = "", []
        for kind, value in pieces:
            if kind == "c":
                template += value
            elif kind == "t":
                template += '"%%s"'
                values.append(value)
            elif kind == "o":
                key, column = value
                template += "%%s"
                values.append(
                    f"""CASE WHEN {column} <> '' THEN ',"{key}":"' || {column} || '"' END"""
                )
            else:
                template += "%%s"
                values.append(value)
        return f"format({_literal(template)}, {', '.join(values)})"
    parts: list[str] = []
    constant = ""
    for kind, value in pieces:
        if kind == "c":
            constant += value
        elif kind == "t":
            parts += [_literal(constant), f"to_json(coalesce({value}, ''))::text"]
            constant = ""
        elif kind == "o":
            key, column = value
            escaped = f"""',"{key}":' || to_json({column})::text"""
            parts += [_literal(constant), f"CASE WHEN {column} <> '' THEN {escaped} ELSE '' END"]
            constant = ""
        else:
            parts += [_literal(constant), value]
            constant = ""
    parts.append(_literal(constant))
    return "(" + " || ".join(part for part in parts if part != "''") + ")"


def _amount(column: str) -> str:
    return f"(coalesce({column}, 0) + 0.0)::text"


def _escaped_or_raw(pieces: list[Piece], texts: list[str]) -> str:
    """The raw form when no text needs escaping (to_json of them all adds only its quotes)."""
    joined = "concat(" + ", ".join(texts) + ")"
    plain = f"octet_length(to_json({joined})::text) = octet_length({joined}) + 2"
    return f"CASE WHEN {plain} THEN {_build(pieces, True)} ELSE {_build(pieces, False)} END"


def _order_pieces(lines: str) -> tuple[list[Piece], list[str]]:
    texts = ["o.order_id", "o.customer_id", "o.email", "o.first_name", "o.last_name"]
    pieces: list[Piece] = [
        ("c", '{"order_id":'),
        ("t", "o.order_id"),
        ("c", ',"order_date":'),
        ("t", _ISO_UTC.format(c="o.order_date")),
        ("c", ',"customer":{"id":'),
        ("t", "o.customer_id"),
    ]
    for name in ("email", "first_name", "last_name"):
        pieces += [("c", f',"{name}":'), ("t", f"o.{name}")]
    pieces += [("c", '},"currency":'), ("t", "o.currency"), ("c", ',"lines":['), ("n", lines)]
    pieces += [("c", "]")]
    for name in ("subtotal", "discount", "shipping_cost", "tax", "total"):
        pieces += [("c", f',"{name}":'), ("n", _amount(f"o.{name}"))]
    more = ["currency", "shipping_method", "payment_method"]
    for name in ("shipping_method", "payment_method"):
        pieces += [("c", f',"{name}":'), ("t", f"o.{name}")]
    for prefix in ("billing", "shipping"):
        for index, part in enumerate(ADDRESS):
            opening = "," if index else f',"{prefix}_address":{{'
            pieces += [("c", f'{opening}"{part}":'), ("t", f"o.{prefix}_{part}")]
            more.append(f"{prefix}_{part}")
        pieces.append(("c", "}"))
    for name in ("shipping_status", "payment_status", "tracking_number", "tracking_url"):
        pieces += [("c", f',"{name}":'), ("t", f"o.{name}")]
        more.append(name)
    pieces.append(("c", "}"))
    return pieces, texts + [f"o.{name}" for name in more]


def _line_pieces() -> list[Piece]:
    count = "coalesce(i.quantity, 0)"
    as_float = f"{count}::float8"
    quantity = (
        f"CASE WHEN {as_float} = trunc({as_float}) AND abs({as_float}) < 9007199254740992"
        f" THEN {as_float}::int8::text ELSE ({count} + 0.0)::text END"
    )
    categories = "i.categories"
    split = (
        f"""coalesce((SELECT ',"categories":' || json_agg(part)::text FROM"""
        f" (SELECT btrim(piece, {_SPACE_LITERAL}) AS part"
        f" FROM unnest(string_to_array({categories}, '|')) AS piece) AS parts"
        " WHERE part <> ''), '')"
    )
    simple = (
        f"{categories} !~ E'(^|\\\\|)[{_SPACE_CLASS}|]|[{_SPACE_CLASS}](\\\\||$)"
        """|["\\\\\\\\\\x01-\\x1f]'"""
    )
    category_json = (
        f"CASE WHEN coalesce({categories}, '') = '' THEN ''"
        f""" WHEN {simple} THEN ',"categories":["' || replace({categories}, '|', '","') || '"]'"""
        f" ELSE {split} END"
    )
    return [
        ("c", '{"line_no":'),
        ("n", "i.line_no::text"),
        ("c", ',"sku":'),
        ("t", "i.sku"),
        ("c", ',"name":'),
        ("t", "i.name"),
        ("c", ',"quantity":'),
        ("n", quantity),
        ("c", ',"unit_price":'),
        ("n", _amount("i.unit_price")),
        ("c", ',"unit_price_incl_tax":'),
        ("n", _amount("i.unit_price_incl_tax")),
        ("o", ("product_url", "i.product_url")),
        ("o", ("image_url", "i.image_url")),
        ("n", category_json),
        ("c", "}"),
    ]


def probe_query() -> str:
    line_texts = ["i.sku", "i.name", "i.product_url", "i.image_url"]
    line = _escaped_or_raw(_line_pieces(), line_texts)
    order, order_texts = _order_pieces("coalesce(l.doc, '')")
    return (
        f"SELECT {_escaped_or_raw(order, order_texts)}"
        " FROM order_export_orders AS o CROSS JOIN LATERAL"
        f" (SELECT string_agg({line}, ',' ORDER BY i.line_no) AS doc"
        " FROM order_export_order_lines AS i WHERE i.order_id = o.order_id) AS l"
        " WHERE o.order_date >= %s ORDER BY o.order_date, o.order_id"
    )


def chunks(conninfo: dict[str, Any], window_start: datetime, size: int) -> Iterator[list[Any]]:
    """The window's documents through the probe, a chunk at a time."""
    import orjson
    import psycopg

    with (
        psycopg.connect(**conninfo, options="-c jit=off") as conn,
        conn.cursor(name="documents") as cursor,
    ):
        cursor.itersize = size
        cursor.execute(probe_query(), (window_start,))
        while rows := cursor.fetchmany(size):
            yield orjson.loads("[" + ",".join([row[0] for row in rows]) + "]")


def read(conninfo: dict[str, Any], window_start: datetime, size: int) -> dict[str, float]:
    """The window read through the probe: seconds, orders, lines."""
    started = time.perf_counter()
    orders = lines = 0
    for docs in chunks(conninfo, window_start, size):
        orders += len(docs)
        lines += sum(len(doc["lines"]) for doc in docs)
    return {"seconds": time.perf_counter() - started, "orders": orders, "lines": lines}
