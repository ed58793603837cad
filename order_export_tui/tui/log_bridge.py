"""The project's log records, while the dashboard is up: warnings and errors become
notifications instead of lines written over the screen."""

from __future__ import annotations

import asyncio
import logging
import threading

from textual.app import App

WATCHED_LOGGER = "order_export"


class NotifyingLogHandler(logging.Handler):
    def __init__(self, app: App[object], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.WARNING)
        self._app = app
        self._loop = loop
        self._thread = threading.get_ident()
        self._saved: tuple[list[logging.Handler], bool] | None = None

    def install(self) -> None:
        logger = logging.getLogger(WATCHED_LOGGER)
        self._saved = (list(logger.handlers), logger.propagate)
        logger.handlers[:] = [self]
        logger.propagate = False

    def remove(self) -> None:
        if self._saved is not None:
            logger = logging.getLogger(WATCHED_LOGGER)
            logger.handlers[:], logger.propagate = self._saved
            self._saved = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        severity = "error" if record.levelno >= logging.ERROR else "warning"
        if threading.get_ident() == self._thread:
            self._app.notify(text, severity=severity)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(lambda: self._app.notify(text, severity=severity))
