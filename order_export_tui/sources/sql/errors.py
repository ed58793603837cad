"""Database failures as messages an operator can act on, with no password or URL user-info."""

from __future__ import annotations

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError

from order_export_tui.transport.redaction import redact

# SQLSTATE classes and codes (PostgreSQL's; other servers share most of them).
_LOGIN_REFUSED = ("28000", "28P01")
_NO_DATABASE = ("3D000",)
_NO_RELATION = ("42P01", "42S02")
_TIMED_OUT = ("57014",)
# What drivers say when there is no SQLSTATE (connection failures, SQLite).
_LOGIN_WORDS = ("password authentication failed", "no password supplied", "login failed",
                "access denied for user")  # fmt: skip
_UNREACHABLE_WORDS = (
    "connection refused",
    "could not translate host name",
    "name or service not known",
    "timeout expired",
    "timed out",
    "no route to host",
    "network is unreachable",
    "could not connect",
    "connection to server",
    "server closed the connection",
    "unable to open database file",
    "can't connect",
)
_NO_RELATION_WORDS = ("no such table", "does not exist", "invalid object name", "doesn't exist")


def display_url(url: URL) -> str:
    """Where the source reads, as it may be shown: no user, no password, no query."""
    shown = URL.create(url.drivername, host=url.host, port=url.port, database=url.database)
    return redact(shown.render_as_string(hide_password=True))


def detail(error: BaseException, password: str | None = None) -> str:
    """The driver's own words, on one line, without credentials."""
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    words = " ".join(str(original).split()) or type(original).__name__
    return redact(words, password)


def connection_problem(error: BaseException, where: str, password_env: str) -> str | None:
    """The operator's message for a failure to log in or to reach the server, else None."""
    code = _sqlstate(error)
    said = detail(error).lower()
    if code in _LOGIN_REFUSED or any(words in said for words in _LOGIN_WORDS):
        hint = f" and the password in ${password_env}" if password_env else ""
        return (
            f"the database at {where} refused the login: check erp.sql.url's user name{hint}"
            f" ({detail(error)})"
        )
    if code in _NO_DATABASE or ('database "' in said and "does not exist" in said):
        return f"the database named in erp.sql.url does not exist at {where} ({detail(error)})"
    if any(words in said for words in _UNREACHABLE_WORDS) and not _is_relation_problem(error):
        return f"cannot reach the database at {where}: {detail(error)}"
    return None


def relation_missing(error: BaseException) -> bool:
    return _is_relation_problem(error)


def timed_out(error: BaseException) -> bool:
    return _sqlstate(error) in _TIMED_OUT


# The drivers the extras install: backend -> (extra, its driver's module, the URL's drivername).
_EXTRAS = {
    "mysql": ("mysql", "pymysql", "mysql+pymysql"),
    "mariadb": ("mysql", "pymysql", "mysql+pymysql"),
    "mssql": ("mssql", "pyodbc", "mssql+pyodbc"),
}


def driver_missing(error: BaseException, url: URL) -> str | None:
    """The operator's message when the URL's driver is not installed or cannot load."""
    if isinstance(error, NoSuchModuleError):
        return f"erp.sql.url names a database this version cannot reach ({url.drivername})"
    if not isinstance(error, ImportError):
        return None
    extra, module, drivername = _EXTRAS.get(url.get_backend_name(), ("", "", ""))
    if isinstance(error, ModuleNotFoundError):
        said = f"the driver for {url.drivername} is not installed ({error.name})"
        if extra and error.name == module:
            return f"{said}: install order-export[{extra}]"
        if extra:
            return (
                f"{said}: install it, or install order-export[{extra}] and write erp.sql.url"
                f" as {drivername}://..."
            )
        return f"{said}: install the Python package SQLAlchemy names for {url.drivername}"
    # Installed, but a library it needs is missing (pyodbc without unixODBC, say).
    return f"the driver for {url.drivername} cannot load: {redact(' '.join(str(error).split()))}"


def is_database_error(error: BaseException) -> bool:
    return isinstance(error, SQLAlchemyError | ImportError)


def _is_relation_problem(error: BaseException) -> bool:
    if _sqlstate(error) in _NO_RELATION:
        return True
    said = detail(error).lower()
    return any(words in said for words in _NO_RELATION_WORDS) and "column" not in said


def _sqlstate(error: BaseException) -> str | None:
    original = error.orig if isinstance(error, DBAPIError) else error
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return code if isinstance(code, str) else None
