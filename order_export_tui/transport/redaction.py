"""Credentials out of any text a platform sends back before it is kept or shown.

A server that echoes the request (a 400 quoting its headers, a proxy's debug page) would
otherwise put the API key or password into the run report, the log, stderr and the state
database; a base URL with `user:password@` inline would print them. `redact` removes:
- the value of an `Authorization` (or `Proxy-Authorization`) header, however quoted;
- `Basic ...` and `Bearer ...` credentials wherever they stand;
- URL user-info (`https://user:secret@host` -> `https://***@host`);
- `password`, `client_secret`, `api_key`, `access_token` and the like as `key=value` or
  `"key": "value"` pairs.
"""

from __future__ import annotations

import re

MASK = "***"

_HEADER = re.compile(
    r"""(?P<name>\b(?:proxy-)?authorization\b["']?\s*[:=]\s*["']?)"""
    r"""(?P<value>[^"'\r\n,;}\]]*)""",
    re.IGNORECASE,
)
_SCHEME_TOKEN = re.compile(
    r"\b(?P<scheme>basic|bearer)(?P<gap>\s+)(?P<token>[^\s\"',;}\]]+)", re.IGNORECASE
)
# Greedy up to the last "@" before the path: people write user names with a raw "@" in them.
_USER_INFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/\s\"'<>]*@", re.IGNORECASE)
_SECRET_PAIR = re.compile(
    r"""(?P<name>\b(?:password|passwd|client_secret|api_?key|apikey|access_token"""
    r"""|refresh_token|secret|token)\b["']?\s*[:=]\s*["']?)(?P<value>[^"'\s&,;}\]]+)""",
    re.IGNORECASE,
)


def redact(text: str, *secrets: str | None) -> str:
    """`text` without credentials; each of `secrets` (known values) is masked as well."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _HEADER.sub(lambda m: m["name"] + MASK if m["value"].strip() else m[0], text)
    text = _SCHEME_TOKEN.sub(_mask_token, text)
    text = _USER_INFO.sub(lambda m: m["scheme"] + MASK + "@", text)
    return _SECRET_PAIR.sub(lambda m: m["name"] + MASK, text)


def _mask_token(match: re.Match[str]) -> str:
    """`Basic <credentials>` / `Bearer <token>`; a plain word after them ("Basic
    authentication") is prose, not a credential."""
    token = match["token"]
    if token == MASK or not _looks_like_credential(token):
        return match[0]
    return match["scheme"] + match["gap"] + MASK


def _looks_like_credential(token: str) -> bool:
    has_mark = any(char.isdigit() or char in "+/=._-~" for char in token)
    mixed_case = any(char.isupper() for char in token) and any(char.islower() for char in token)
    return has_mark or mixed_case or len(token) >= 24


def redact_url(url: str) -> str:
    """A URL as it may be shown: no user-info, no secret in its query."""
    return redact(url)
