"""The service hosted behind its control socket in a thread with its own event loop: what a
daemon is to an attached dashboard, with the pid and start time a test chooses (a snapshot
shows them), in this process so that the wall clock can be fixed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from order_export_tui.engine.runner import ExportEngine
from order_export_tui.service.control_socket import is_live
from order_export_tui.service.export_service import ExportService
from order_export_tui.service.hosted import HostedControl
from order_export_tui.service.session import serve_control_socket
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import Settings
from order_export_tui.state import StateStore

T = TypeVar("T")


class ServiceThread:
    def __init__(
        self, settings: Settings, *, clock: Callable[[], datetime], pid: int, since: str
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._pid = pid
        self._since = since
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.control: HostedControl | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def start(self, timeout: float = 20.0) -> ServiceThread:
        self._thread.start()
        assert self._ready.wait(timeout), "the service did not start"
        path = self.settings.control_socket_path
        deadline = time.monotonic() + timeout
        while not is_live(path, timeout=0.5):
            assert time.monotonic() < deadline, "the control socket did not come up"
            time.sleep(0.02)
        return self

    def call(self, work: Callable[[HostedControl], Awaitable[T]], timeout: float = 60.0) -> T:
        """Run `work(control)` on the service's loop and wait for its result."""
        assert self._loop is not None and self.control is not None
        control = self.control

        async def wrapped() -> T:
            return await work(control)

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self.control is not None and self._thread.is_alive():
            self.call(lambda control: control.stop(), timeout)
        self._thread.join(timeout)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        state = StateStore(self.settings.state_database_path)

        async def no_email(settings: Settings, report: Any) -> None:
            return None

        engine = ExportEngine(
            self.settings,
            state,
            source_factory=build_source,
            destination_factory=build_destination,
            clock=self._clock,
        )
        service = ExportService(self.settings, engine, notifier=no_email, clock=self._clock)
        self.control = serve_control_socket(
            HostedControl(service, state, role="daemon", since=self._since, pid=self._pid),
            self.settings.control_socket_path,
        )
        self._ready.set()
        try:
            await self.control.serve()
        finally:
            state.close()


async def run_once(control: HostedControl) -> None:
    control.service.request_run("manual")
    await control.service.wait_for_run()
