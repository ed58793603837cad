"""The dashboard (`order-export` / `order-export tui`): the only package that imports Textual.

`run_dashboard(settings_path)` is what the CLI calls; `OrderExportApp` is the app, built
with injected parts for tests.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from order_export_tui.collector import settle_collector
from order_export_tui.service.control_client import AttachedControl, NotAttachedError
from order_export_tui.service.control_socket import ControlSocketError, is_live
from order_export_tui.service.session import StateLockedError, hosted_session
from order_export_tui.service.wiring import startup_problems
from order_export_tui.settings import Settings, SettingsError, load_settings, settings_from_dict
from order_export_tui.settings.salvage import storage_of_broken_file
from order_export_tui.tui.app import OrderExportApp

EXIT_OK = 0
EXIT_HELD = 1
EXIT_BAD_SETTINGS = 2


def run_dashboard(settings_path: Path) -> int:
    """Load the settings and run the dashboard until the operator quits.

    While a daemon (or another dashboard) runs exports on the same state database, the
    dashboard attaches to it over its control socket: the same panels, live, and every key
    acts on that process; quitting leaves it running. Otherwise the dashboard hosts the
    service itself (and serves the control socket, so commands and other dashboards can
    attach to it).

    Bad settings raise `SettingsError` (the CLI prints each problem, exit 2), unless a daemon
    answers on the control socket of the file's `[storage]`: then the dashboard attaches and
    names the problems, to be fixed on its settings screen. An unusable
    configuration (a connector this version lacks, a missing secret) prints its problems and
    returns 2. A process that holds the state database but serves no control socket (a
    `run`) is named, and 1 returned. Otherwise returns 0 once the app has stopped cleanly.
    """
    settings, file_problems = dashboard_settings(settings_path)
    if file_problems:
        return _attached(settings, file_problems=file_problems)
    if is_live(settings.control_socket_path):
        return _attached(settings)
    problems = startup_problems(settings)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_BAD_SETTINGS
    settle_collector()
    try:
        with hosted_session(settings, role="tui") as session:
            app = OrderExportApp(
                settings,
                control=session.control,
                watch_terminal=_is_terminal(),
            )
            app.run()
    except StateLockedError as error:
        if is_live(settings.control_socket_path):  # a daemon that started meanwhile
            return _attached(settings)
        print(
            f"Not started: {error}. It serves no control socket to attach to, and the"
            " dashboard does not start a second engine; wait for it to finish.",
            file=sys.stderr,
        )
        return EXIT_HELD
    except ControlSocketError as error:
        print(f"Not started: {error}", file=sys.stderr)
        return EXIT_HELD
    return _exit_code(app)


def dashboard_settings(settings_path: Path) -> tuple[Settings, list[str]]:
    """The settings and, for a file that does not validate while a daemon answers on its
    control socket, the file's problems (the settings are then the file's `[storage]` paths,
    to attach with). A broken file with no daemon to attach to raises `SettingsError`."""
    try:
        return load_settings(settings_path), []
    except SettingsError as error:
        # A broken file does not lock the operator out of a healthy daemon: it keeps its last
        # good settings, and the file's `[storage]` (or the defaults) says where it answers.
        salvaged = storage_of_broken_file(settings_path) if settings_path.is_file() else None
        if salvaged is None or not is_live(salvaged.control_socket_path):
            raise
        return salvaged, list(error.problems) or [str(error)]


def _attached(settings: Settings, *, file_problems: list[str] | None = None) -> int:
    """`file_problems`: why the settings file does not validate (the daemon runs on its last
    good settings): the dashboard says so, and its settings screen is where to fix it."""
    try:
        remote = asyncio.run(remote_settings(settings.control_socket_path))
    except NotAttachedError as error:
        print(f"Not started: cannot attach: {error}", file=sys.stderr)
        return EXIT_HELD
    app = OrderExportApp(
        remote,
        control=AttachedControl(settings.control_socket_path),
        watch_terminal=_is_terminal(),
        file_problems=file_problems,
    )
    app.run()
    return _exit_code(app)


async def remote_settings(socket_path: Path) -> Settings:
    """The settings the attached process runs with (secrets only as variable names)."""
    view = await AttachedControl(socket_path).read_settings()
    return settings_from_dict(view.data, Path(view.path))


def _is_terminal() -> bool:
    return sys.__stdin__ is not None and sys.__stdin__.isatty()


def _exit_code(app: OrderExportApp) -> int:
    if app.terminal_lost:
        # Everything is recorded and the lock is released; what is left are Textual's
        # terminal threads, which can stay blocked on the dead tty and would keep the
        # interpreter from exiting. A dropped session must not leave a process behind.
        os._exit(EXIT_OK)
    return app.return_code or EXIT_OK


__all__ = ["OrderExportApp", "dashboard_settings", "remote_settings", "run_dashboard"]
