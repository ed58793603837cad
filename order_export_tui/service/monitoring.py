"""Monitoring on `monitoring.listen` (interfaces.md §6): `GET /metrics` in the Prometheus text
format and `GET /healthz`, served by the daemon and a hosting dashboard on a uvicorn server of
its own, whether or not the webhook intake is on.

Counters count from the start of this process (Prometheus expects a restart to reset them);
gauges are read from the state database at each scrape. Neither endpoint shows a credential,
a user name, an address or a variable name: a failed run is named by its id and time, and its
error stays in its log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from order_export_tui.service.embedded_server import EmbeddedServer
from order_export_tui.service.events import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    BatchFinished,
    ControlEvent,
    EventDelivered,
    EventRetried,
    RetryScheduled,
    RunFinished,
)
from order_export_tui.service.health import HealthSnapshot
from order_export_tui.service.intake import IntakeError
from order_export_tui.settings.rules import parse_listen

OUTCOMES = (SUCCEEDED, FAILED, CANCELLED)


class MonitoringError(IntakeError):
    """Monitoring cannot listen where the settings say; the process does not start (caught
    wherever a webhook intake that cannot listen is)."""


@dataclass(slots=True)
class Tallies:
    """The counters, fed by the engine's and the service's events."""

    runs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    orders_sent: int = 0
    retries: int = 0
    realtime_resends: int = 0
    _sent_in_run: dict[int, int] = field(default_factory=dict)

    def __call__(self, event: ControlEvent) -> None:
        match event:
            case BatchFinished():
                self._count_sent(event.run_id, event.counts)
            case RetryScheduled() | EventRetried():
                self.retries += 1
            case RunFinished():
                report = event.report
                self._count_sent(report.run_id, report.counts)
                self._sent_in_run.pop(report.run_id, None)
                self.runs[report.outcome] = self.runs.get(report.outcome, 0) + 1
            case EventDelivered() if event.sent and event.resent:
                self.realtime_resends += 1
            case EventDelivered() if event.sent:
                self.orders_sent += 1

    def _count_sent(self, run_id: int, counts: dict[str, int]) -> None:
        # Orders sent as cancelled (interfaces.md §7) are sent orders too.
        sent = counts.get("new", 0) + counts.get("updated", 0) + counts.get("cancelled", 0)
        self.orders_sent += max(0, sent - self._sent_in_run.get(run_id, 0))
        self._sent_in_run[run_id] = max(sent, self._sent_in_run.get(run_id, 0))


class _Collector(Collector):
    def __init__(self, monitor: Monitoring) -> None:
        self._monitor = monitor

    def collect(self) -> Iterator[Metric]:
        tallies = self._monitor.tallies
        health = self._monitor.health()
        runs = CounterMetricFamily(
            "order_export_runs", "Export runs finished, by outcome.", labels=["outcome"]
        )
        for outcome, count in sorted(tallies.runs.items()):
            runs.add_metric([outcome], count)
        yield runs
        yield CounterMetricFamily(
            "order_export_orders_sent",
            "Orders the destination confirmed (runs, resends and real-time events).",
            value=tallies.orders_sent,
        )
        yield CounterMetricFamily(
            "order_export_realtime_resends",
            "Real-time events sent again after an attempt whose answer a stopped process did"
            " not record: the destination may have had them already.",
            value=tallies.realtime_resends,
        )
        yield CounterMetricFamily(
            "order_export_retries",
            "Retries: one more attempt of one request to a platform.",
            value=tallies.retries,
        )
        yield GaugeMetricFamily(
            "order_export_skipped_orders",
            "Orders on the skipped list.",
            value=health.skipped_orders,
        )
        yield GaugeMetricFamily(
            "order_export_realtime_queue_depth",
            "Real-time events waiting for delivery.",
            value=health.queue.get("queued", 0),
        )
        yield GaugeMetricFamily(
            "order_export_run_in_progress",
            "1 while an export run is in progress, else 0.",
            value=1 if health.run_in_progress else 0,
        )
        last_success = health.last_success_at
        yield GaugeMetricFamily(
            "order_export_last_success_timestamp_seconds",
            "When the last successful run finished (Unix time; 0: none yet).",
            value=0 if last_success is None else last_success.timestamp(),
        )
        yield GaugeMetricFamily(
            "order_export_drift_orders",
            "Orders whose platform copy the last verify found drifting and left unrepaired.",
            value=health.drift_orders,
        )
        last_verify = health.last_verify_at
        yield GaugeMetricFamily(
            "order_export_last_verify_timestamp_seconds",
            "When the last verify of the platform's copy finished (Unix time; 0: none yet).",
            value=0 if last_verify is None else last_verify.timestamp(),
        )


class Monitoring:
    """The counters and the app that serves them. The service feeds `tallies` its events
    and hands in `health`, which builds the snapshot both /healthz answers come from."""

    def __init__(self, health: Callable[[], HealthSnapshot]) -> None:
        self.health = health
        self.tallies = Tallies()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self.app = Starlette(
            routes=[
                Route("/metrics", self._metrics, methods=["GET"]),
                Route("/healthz", self._healthz, methods=["GET"]),
            ]
        )

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    async def _metrics(self, request: Request) -> Response:
        return Response(self.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    async def _healthz(self, request: Request) -> Response:
        health = self.health()
        return JSONResponse(health.monitoring_answer(), status_code=200 if health.healthy else 503)


class MonitoringServer:
    """Serves `Monitoring` on `host:port` inside the running event loop."""

    def __init__(self, monitoring: Monitoring, listen: str) -> None:
        self.listen = listen
        self._address = parse_listen(listen)
        config = uvicorn.Config(
            monitoring.app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            limit_concurrency=100,
        )
        self._server = EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return bool(self._server.started)

    async def start(self) -> None:
        # Bound here, not by uvicorn: a port in use is then an error to report, not the
        # SystemExit uvicorn raises.
        sock = self._bind()
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                with contextlib.suppress(SystemExit, Exception):
                    await self._task
                raise MonitoringError(f"monitoring cannot listen on {self.listen}")
            await asyncio.sleep(0.01)

    def _bind(self) -> socket.socket:
        host, port = self._address
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as error:
            raise MonitoringError(f"monitoring cannot listen on {self.listen}: {error}") from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(100)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            reason = error.strerror or str(error)
            raise MonitoringError(f"monitoring cannot listen on {self.listen}: {reason}") from None
        return sock

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None
