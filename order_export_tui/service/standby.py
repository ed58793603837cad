"""A standby daemon's work while another leads (interfaces.md §10): it takes webhooks like
the leader (each committed to the shared PostgreSQL state before the 202, delivered by the
leader, woken by NOTIFY), and tries the leader's lock every few seconds. It runs no
schedule, no run and no delivery."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from order_export_tui.clock import local_now
from order_export_tui.service.intake import Intake, IntakeServer
from order_export_tui.settings import Settings, secret_value
from order_export_tui.state import StateStore

if TYPE_CHECKING:
    from order_export_tui.state.pg_leadership import Leadership

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
