"""A uvicorn server inside the host's own event loop, with the host owning the signals."""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn


class EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon or the dashboard owns SIGINT/SIGTERM
