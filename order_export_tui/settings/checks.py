"""What a key may hold: the rule type, the common rules, and the problem text that names a key.

Core settings and every connector's section build their rules from these, so a problem reads
the same whichever package declared the key: ``"<key>: <expect> (got <value>)"``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACKETED_LISTEN = re.compile(r"\[([^\]]+)\]:(\d{1,5})")


@dataclass(frozen=True)
class Rule:
    """What a key must hold: ``"<key>: <expect> (got <value>)"`` when ``accepts`` says no.
    ``choices`` lists the allowed values of an enumeration (the form offers them)."""

    expect: str
    accepts: Callable[[Any], bool]
    choices: tuple[str, ...] = ()


def is_int(value: object) -> bool:
    # TOML booleans arrive as Python bools, which are ints; they are not counts.
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int, high: int) -> Rule:
    return Rule(
        f"must be an integer from {low} to {high}",
        lambda v: is_int(v) and low <= v <= high,
    )


def one_of(*allowed: str) -> Rule:
    listed = ", ".join(json.dumps(choice) for choice in allowed)
    return Rule(
        f"must be one of {listed}",
        lambda v: isinstance(v, str) and v in allowed,
        choices=tuple(allowed),
    )


def is_valid_email(address: str) -> bool:
    """A plain ``local@domain`` address: one "@", no spaces, a domain with no empty labels."""
    if address.count("@") != 1 or any(ch.isspace() for ch in address):
        return False
    local, domain = address.split("@")
    return bool(local) and bool(domain) and "" not in domain.split(".")


def is_url(value: str) -> bool:
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:8787"`` for IPv6); ValueError when malformed."""
    bracketed = _BRACKETED_LISTEN.fullmatch(value)
    if bracketed:
        host, port_text = bracketed.groups()
        ipaddress.IPv6Address(host)  # raises ValueError for a non-IPv6 host in brackets
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or ":" in host or any(ch.isspace() for ch in host):
            raise ValueError(f"not host:port: {value!r}")
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be 1 to 65535: {value!r}")
    return host, int(port_text)


def is_listen(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_listen(value)
    except ValueError:
        return False
    return True


BOOL = Rule("must be true or false", lambda v: isinstance(v, bool))
STR = Rule("must be a string", lambda v: isinstance(v, str))
NON_EMPTY_STR = Rule("must be a non-empty string", lambda v: isinstance(v, str) and bool(v.strip()))
URL = Rule(
    'must be "" or a URL starting with http:// or https://',
    lambda v: isinstance(v, str) and (v == "" or is_url(v)),
)
ENV = Rule(
    "must be an environment variable name (letters, digits and _, not starting with a digit)",
    lambda v: isinstance(v, str) and ENV_NAME.fullmatch(v) is not None,
)
EMAIL = Rule(
    "must be an e-mail address like name@example.com",
    lambda v: isinstance(v, str) and is_valid_email(v),
)
EMAIL_LIST = Rule(
    'must be a list of e-mail addresses, e.g. ["admin@example.com"]',
    lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
)


# Everything up to the last "@" before the path: a password may hold spaces and quotes too.
_USER_INFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/]*@", re.IGNORECASE)


def show(value: object) -> str:
    """A value as the operator wrote it, shortened; a table is named, not dumped."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        # A URL's user-info may hold a password: a problem never repeats it.
        text = json.dumps(_USER_INFO.sub(r"\g<scheme>***@", value), ensure_ascii=False)
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, list):
        shown = [show(item) for item in value[:5]]
        text = "[" + ", ".join(shown + (["..."] if len(value) > 5 else [])) + "]"
    elif isinstance(value, dt.date | dt.time):
        text = value.isoformat()
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def problem(key: str, message: str, value: object) -> str:
    return f"{key}: {message} (got {show(value)})"
