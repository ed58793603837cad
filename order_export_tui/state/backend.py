"""What the aggregates see of a state database connection, whichever the backend: SQLite's
`connection.Database` or PostgreSQL's `postgres.PostgresDatabase`.

SQL is written once, with `?` placeholders and the dialect both speak (`INSERT ... ON CONFLICT`,
`RETURNING`); a backend translates what it must (PostgreSQL's `%s`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Rows(Protocol):
    """A statement's result: its rows and how many it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class StateConnection(Protocol):
    """One connection to the state database, its tables made and migrated."""

    @property
    def where(self) -> str:
        """The database as it may be shown: a file path, or a URL without user-info."""
        ...

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Rows: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> object: ...

    def rows_for_ids(
        self, select: str, ids: Sequence[str], leading: Sequence[Any] = ()
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of `select` for these order ids; a `select` ending in `WHERE ... AND` has its
        own conditions first, with their parameters in `leading`."""
        ...

    def transaction(self) -> AbstractContextManager[StateConnection]: ...

    def close(self) -> None: ...
