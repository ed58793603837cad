"""Secrets and exposure (issue 15, item 5): a guessable webhook secret keeps the intake from
starting, and /healthz tells whoever can reach it states and counts only."""

from __future__ import annotations

from pathlib import Path

import pytest

from order_export_tui.service.intake import Intake, IntakeError
from order_export_tui.state import StateStore
from tests.conftest import write_settings
from tests.support.cli import order_export
from tests.support.fault_server import Fault
from tests.support.intake_server import running_channel
from tests.support.orders import order

SHORT = "only-15-bytes.."


@pytest.mark.parametrize(
    ("scheme", "secret"),
    [
        ("x-signature", SHORT),
        ("standard-webhooks", "whsec_c2hvcnQ="),  # base64 of "short"
        ("standard-webhooks", "a-long-secret-without-the-prefix"),
    ],
)
def test_check_reports_a_weak_webhook_secret(tmp_path: Path, scheme: str, secret: str) -> None:
    write_settings(tmp_path, {"webhook": {"enabled": True, "scheme": scheme}})

    result = order_export("check", cwd=tmp_path, env={"ORDER_EXPORT_WEBHOOK_SECRET": secret})

    assert result.returncode == 2
    assert "webhook.secret_env" in result.stderr
    assert "ORDER_EXPORT_WEBHOOK_SECRET" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_the_daemon_refuses_to_start_with_a_short_secret(tmp_path: Path) -> None:
    write_settings(tmp_path, {"webhook": {"enabled": True}})

    result = order_export("daemon", cwd=tmp_path, env={"ORDER_EXPORT_WEBHOOK_SECRET": SHORT})

    assert result.returncode == 2
    assert "shorter than 16 bytes" in " ".join(result.stderr.split())  # however it wraps
    assert SHORT not in result.stderr
    assert "Traceback" not in result.stderr


def test_check_accepts_a_secret_of_16_bytes(tmp_path: Path) -> None:
    write_settings(tmp_path, {"webhook": {"enabled": True}})

    result = order_export(
        "check", cwd=tmp_path, env={"ORDER_EXPORT_WEBHOOK_SECRET": "sixteen-bytes-ok"}
    )

    assert result.returncode == 0, result.stderr


def test_the_intake_itself_refuses_a_short_secret(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.sqlite")
    try:
        with pytest.raises(IntakeError, match="shorter than 16 bytes"):
            Intake(
                state=state,
                secret=SHORT,
                clock=lambda: None,  # type: ignore[arg-type,return-value]
                on_accepted=lambda event_id: None,
                health=dict,
            )
    finally:
        state.close()


async def test_healthz_shows_states_and_counts_only(make_settings, loopback) -> None:  # type: ignore[no-untyped-def]
    server, _ = loopback
    server.plan(*[Fault(status=503, body={"error": "user jane@example.com locked"})] * 50)
    async with running_channel(make_settings, loopback) as channel:
        await channel.post("/webhooks/order-completed", order("SO-HZ"))
        delivery = channel.service.realtime.delivery  # type: ignore[union-attr]
        await channel.until(lambda: delivery.last_error is not None)

        answer = await channel.client.get("/healthz")

    text = answer.text
    assert answer.status_code == 503  # real-time delivery is failing
    health = answer.json()
    assert health["status"] == "unhealthy"
    assert health["destination"]["state"] == "failing"
    assert health["intake"]["listening"] is True
    assert health["intake"]["queued"] == 1
    for secret_of_the_host in (
        str(channel.port),
        "127.0.0.1",
        server.url,
        "ORDER_EXPORT",
        "_env",
        "jane",
        "503",
        str(delivery.last_error),
    ):
        assert secret_of_the_host not in text
