"""The package's bytecode, compiled once at the start of a test session.

The tests start hundreds of `order-export` processes (commands, daemons). Where
PYTHONDONTWRITEBYTECODE is set (it is on this project's machines) nothing writes the package's
`__pycache__`, so each of them compiled the ~90 modules it imports again: a fifth of its start-up
on a loaded machine. Compiled here, every later process reads them (a stale
file is never used: Python checks each source's size and time).
"""

from __future__ import annotations

import compileall

import pytest

from tests.support.cli import REPO


def pytest_sessionstart(session: pytest.Session) -> None:
    compileall.compile_dir(REPO / "order_export_tui", quiet=1)
