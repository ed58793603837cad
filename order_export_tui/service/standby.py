"""A standby daemon's work while another leads (interfaces.md §10): it takes webhooks like
the leader (each committed to the shared PostgreSQL state before the 202, delivered by the
leader, woken by NOTIFY), serves its machine's control socket (`standby_control`: the
leader's run live, commands put to the leader), and tries the leader's lock every few
seconds. It runs no schedule, no run and no delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from order_export_tui.clock import local_now
from order_export_tui.service.control_server import ControlServer
from order_export_tui.service.control_socket import ControlSocketError
from order_export_tui.service.intake import Intake, IntakeServer
from order_export_tui.settings import Settings, secret_value
from order_export_tui.state import StateStore

if TYPE_CHECKING:
    from order_export_tui.state.pg_leadership import Leadership

log = logging.getLogger("order_export.daemon")

TRY_EVERY_SECONDS = 2.0


def _standby_health() -> dict[str, object]:
    """A standby's `GET /healthz` on the intake: it accepts, the leader runs the rest."""
    return {"status": "ok", "problems": [], "cluster_role": "standby"}


async def serve_intake_until_leading(settings: Settings, member: Leadership) -> None:
    """Serve the webhook intake (when `webhook.enabled`) until this daemon holds the lock;
    the intake stops then, for the leader's service to serve it."""
    server: IntakeServer | None = None
    intake_state: StateStore | None = None
    if settings.webhook.enabled:
        intake_state = StateStore(member.location, durable=True)
        intake = Intake(
            state=intake_state,
            secret=secret_value(settings.webhook.secret_env) or "",
            clock=local_now,
            on_accepted=lambda _event_id: None,  # the leader hears of it by NOTIFY
            health=_standby_health,
            scheme=settings.webhook.scheme,
            tolerance_seconds=settings.webhook.tolerance_seconds,
        )
        server = IntakeServer(intake, settings.webhook.listen)
        await server.start()
    try:
        async with _control_socket(settings, member):
            while True:
                await asyncio.sleep(TRY_EVERY_SECONDS)
                await asyncio.to_thread(member.beat)
                if await asyncio.to_thread(member.try_lead):
                    return
    finally:
        if server is not None:
            await server.stop()
        if intake_state is not None:
            intake_state.close()


@contextlib.asynccontextmanager
async def _control_socket(settings: Settings, member: Leadership) -> AsyncIterator[None]:
    """The machine's control socket, served by the standby until it leads (then the leader's
    service serves it)."""
    from order_export_tui.service.standby_control import standby_control

    control, state = standby_control(
        settings, member.location, since=member.since, members=member.members
    )
    server = ControlServer(
        control, settings.control_socket_path, announce="standby: serving the control socket %s"
    )
    try:
        await server.start()
    except ControlSocketError as error:
        log.warning("standby: no control socket: %s", error)
        state.close()
        yield
        return
    following = asyncio.get_running_loop().create_task(control.follow_the_leader())
    try:
        yield
    finally:
        control.close()
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await server.stop()
        state.close()
