"""Payment callbacks out of order (interfaces.md §4): the older one is accepted, recorded and
changes nothing; times are compared as instants, offsets included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from order_export_tui.state import StateStore
from tests.support.intake_server import Channel, payment, running_channel
from tests.support.orders import order

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ORDER_PATH = "/webhooks/order-completed"
PAYMENT_PATH = "/webhooks/payment-status"


@pytest.fixture
async def channel(make_settings, loopback) -> AsyncIterator[Channel]:  # type: ignore[no-untyped-def]
    async with running_channel(make_settings, loopback) as running:
        yield running


def test_state_compares_instants_not_strings(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.sqlite")
    try:
        assert state.set_payment_override(
            "SO-1", "refunded", occurred_at="2026-11-27T10:00:00+00:00", now=NOW
        )
        # 11:30 at +02:00 is 09:30 UTC: half an hour before the refund, though it sorts after.
        applied = state.set_payment_override(
            "SO-1", "paid", occurred_at="2026-11-27T11:30:00+02:00", now=NOW
        )
        assert applied is False
        assert state.payment_overrides(["SO-1"]) == {"SO-1": "refunded"}
        # Later as an instant, though it sorts before: applied.
        assert state.set_payment_override(
            "SO-1", "paid", occurred_at="2026-11-27T09:45:00-01:00", now=NOW
        )
        assert state.payment_overrides(["SO-1"]) == {"SO-1": "paid"}
    finally:
        state.close()


async def test_an_older_callback_is_accepted_and_changes_nothing(channel: Channel) -> None:
    await channel.post(ORDER_PATH, order("SO-P1"))
    await channel.until(lambda: "SO-P1" in channel.store.orders)
    refunded = await channel.post(
        PAYMENT_PATH, payment("SO-P1", "refunded", "2026-11-27T10:30:00+00:00")
    )
    await channel.until(lambda: channel.store.orders["SO-P1"]["payment_status"] == "refunded")

    older = await channel.post(PAYMENT_PATH, payment("SO-P1", "paid", "2026-11-27T10:25:00+00:00"))

    assert refunded.status_code == older.status_code == 202
    await channel.until(lambda: channel.state.event_counts().get("superseded") == 1)
    await asyncio.sleep(0.2)
    assert channel.store.orders["SO-P1"]["payment_status"] == "refunded"
    assert [s for _, s in channel.store.received] == ["pending", "refunded"]
    assert channel.state.exported_orders(["SO-P1"])["SO-P1"].payment_status == "refunded"


async def test_an_older_callback_with_another_offset_changes_nothing(channel: Channel) -> None:
    await channel.post(ORDER_PATH, order("SO-P2"))
    await channel.post(PAYMENT_PATH, payment("SO-P2", "refunded", "2026-11-27T10:00:00+00:00"))
    await channel.post(PAYMENT_PATH, payment("SO-P2", "paid", "2026-11-27T11:30:00+02:00"))

    await channel.until(lambda: channel.state.event_counts().get("superseded") == 1)
    assert channel.store.orders["SO-P2"]["payment_status"] == "refunded"


async def test_held_callbacks_keep_the_newest_status_for_the_order_when_it_arrives(
    channel: Channel,
) -> None:
    await channel.post(PAYMENT_PATH, payment("SO-P3", "paid", "2026-11-27T10:00:00+00:00"))
    await channel.until(lambda: channel.state.event_counts().get("held") == 1)
    # Sent later, happened earlier (09:30 UTC): recorded, not held, no effect.
    older = await channel.post(
        PAYMENT_PATH, payment("SO-P3", "refunded", "2026-11-27T11:30:00+02:00")
    )
    assert older.status_code == 202
    await channel.until(lambda: channel.state.event_counts().get("superseded") == 1)
    assert channel.state.event_counts().get("held") == 1

    await channel.post(ORDER_PATH, order("SO-P3"))

    await channel.until(lambda: "SO-P3" in channel.store.orders)
    assert channel.store.orders["SO-P3"]["payment_status"] == "paid"
