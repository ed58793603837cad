"""The dashboard (`order-export` / `order-export tui`): the only package that imports Textual.

`run_dashboard(settings_path)` is what the CLI calls; `OrderExportApp` is the app, built
with injected parts for tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from order_export_tui.service.export_service import assemble_service
from order_export_tui.service.wiring import startup_problems
from order_export_tui.settings import load_settings
from order_export_tui.state import StateLock, StateLockedError, StateStore
from order_export_tui.tui.app import OrderExportApp
from order_export_tui.tui.intake_status import ServiceIntake

EXIT_OK = 0
EXIT_HELD = 1
EXIT_BAD_SETTINGS = 2


def run_dashboard(settings_path: Path) -> int:
    """Load the settings and run the dashboard until the operator quits.

    Bad settings raise `SettingsError` (the CLI prints each problem, exit 2). An unusable
    configuration (a connector this version lacks, a missing secret) prints its problems and
    returns 2. While another process holds the state database, says which one and returns 1:
    a second engine is never started. Otherwise returns 0 once the app has stopped cleanly.
    """
    settings = load_settings(settings_path)
    problems = startup_problems(settings)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_BAD_SETTINGS
    try:
        with StateLock(settings.state_database_path, role="tui"):
            state = StateStore(settings.state_database_path)
            intake_state = None
            try:
                service, intake_state = assemble_service(settings, state)
                app = OrderExportApp(
                    settings,
                    service=service,
                    state=state,
                    intake=ServiceIntake(service) if service.realtime is not None else None,
                    watch_terminal=sys.__stdin__ is not None and sys.__stdin__.isatty(),
                )
                app.run()
            finally:
                if intake_state is not None:
                    intake_state.close()
                state.close()
    except StateLockedError as error:
        print(
            f"Not started: {error}. The dashboard does not start a second engine;"
            " stop that process first.",
            file=sys.stderr,
        )
        return EXIT_HELD
    if app.terminal_lost:
        # Everything is recorded and the lock is released; what is left are Textual's
        # terminal threads, which can stay blocked on the dead tty and would keep the
        # interpreter from exiting. A dropped session must not leave a process behind.
        os._exit(EXIT_OK)
    return app.return_code or EXIT_OK


__all__ = ["OrderExportApp", "run_dashboard"]
