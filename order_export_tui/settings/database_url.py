"""`storage.state_database` as a PostgreSQL URL: recognising one, and showing it without its
user-info (interfaces.md §10). Read by the settings' rules and by the state's location."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

URL_SCHEMES = ("postgresql", "postgres")


def is_database_url(value: str) -> bool:
    """Whether `storage.state_database` names a PostgreSQL server rather than a file."""
    scheme, separator, _ = value.strip().partition("://")
    return bool(separator) and scheme.lower() in URL_SCHEMES


def shown_url(url: str) -> str:
    """The URL as it may be printed or logged: no user-info (user, password) at all."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "postgresql://(an unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def url_has_password(url: str) -> bool:
    try:
        return urlsplit(url.strip()).password is not None
    except ValueError:
        return False
