"""Log lines that cannot be forged: every control character in a logged value is escaped.

An order id, a reason from a platform or a webhook body's text may hold a newline; written
as it is, it would start a line of its own ("... run 99 succeeded") that no process wrote.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    if char == "\t":
        return "\\t"
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_for_log(text: str) -> str:
    """`text` on one line: control, line-separator and bidirectional characters escaped."""
    return _CONTROL.sub(_escaped, text)
