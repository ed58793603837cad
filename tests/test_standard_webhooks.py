"""webhook.scheme = "standard-webhooks" (interfaces.md §4): requests signed with the
specification's reference library itself, replay refused by timestamp and webhook-id."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.intake_server import SECRET, WHSEC, Channel, payment, running_channel
from tests.support.intake_server import x_signature_headers as x_signed
from tests.support.orders import order

ORDER_PATH = "/webhooks/order-completed"
PAYMENT_PATH = "/webhooks/payment-status"


def signed(
    body: bytes,
    *,
    msg_id: str = "msg_1",
    secret: str = WHSEC,
    at: float | None = None,
) -> dict[str, str]:
    """The headers a Standard Webhooks sender puts on `body`, made by the reference library."""
    stamp = datetime.fromtimestamp(int(time.time() if at is None else at), UTC)
    signature = Webhook(secret).sign(msg_id, stamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


@pytest.fixture
async def standard(make_settings, loopback) -> AsyncIterator[Channel]:  # type: ignore[no-untyped-def]
    async with running_channel(
        make_settings,
        loopback,
        webhook={"scheme": "standard-webhooks", "tolerance_seconds": 300},
        secret=WHSEC,
    ) as channel:
        yield channel


async def test_a_request_signed_by_the_reference_library_is_accepted(standard: Channel) -> None:
    body = orjson.dumps(order("SO-SW1"))

    answer = await standard.post(ORDER_PATH, body, signed(body))

    assert answer.status_code == 202
    await standard.until(lambda: "SO-SW1" in standard.store.orders)


async def test_a_stale_timestamp_is_refused_and_nothing_is_stored(standard: Channel) -> None:
    body = orjson.dumps(order("SO-SW2"))

    answer = await standard.post(ORDER_PATH, body, signed(body, at=time.time() - 301))

    assert answer.status_code == 401
    assert "webhook-timestamp" in answer.json()["error"]
    assert standard.state.event_counts() == {}


async def test_a_timestamp_from_the_future_is_refused(standard: Channel) -> None:
    body = orjson.dumps(order("SO-SW3"))

    answer = await standard.post(ORDER_PATH, body, signed(body, at=time.time() + 400))

    assert answer.status_code == 401


async def test_a_wrong_secret_is_refused(standard: Channel) -> None:
    body = orjson.dumps(order("SO-SW4"))
    other = "whsec_" + base64.b64encode(b"another-secret-of-enough-length").decode()

    answer = await standard.post(ORDER_PATH, body, signed(body, secret=other))

    assert answer.status_code == 401
    assert standard.state.event_counts() == {}


async def test_a_changed_body_is_refused(standard: Channel) -> None:
    body = orjson.dumps(order("SO-SW5"))
    headers = signed(body)

    answer = await standard.post(ORDER_PATH, orjson.dumps(order("SO-SW6")), headers)

    assert answer.status_code == 401


async def test_a_repeated_webhook_id_has_one_effect_and_the_first_event_id(
    standard: Channel,
) -> None:
    body = orjson.dumps(payment("SO-SW7", "paid"))
    first = await standard.post(PAYMENT_PATH, body, signed(body, msg_id="msg_repeat"))
    # The sender's retry: the same id, signed again a little later, even with another body.
    later = orjson.dumps(payment("SO-SW7", "refunded", "2026-11-27T10:26:00+00:00"))
    again = await standard.post(
        PAYMENT_PATH, later, signed(later, msg_id="msg_repeat", at=time.time() + 5)
    )

    assert first.status_code == again.status_code == 202
    assert again.json()["event_id"] == first.json()["event_id"]
    await standard.until(lambda: standard.state.event_counts().get("held") == 1)
    assert sum(standard.state.event_counts().values()) == 1


async def test_several_signatures_in_one_header_any_valid_v1_is_enough(
    standard: Channel,
) -> None:
    body = orjson.dumps(order("SO-SW8"))
    headers = signed(body, msg_id="msg_rotate")
    old_secret = "whsec_" + base64.b64encode(b"the-secret-before-rotation").decode()
    stale = signed(body, msg_id="msg_rotate", secret=old_secret)["webhook-signature"]
    headers["webhook-signature"] = f"v2,bm90LXVzZWQ= {stale} {headers['webhook-signature']}"

    answer = await standard.post(ORDER_PATH, body, headers)

    assert answer.status_code == 202


async def test_x_signature_is_not_accepted_under_standard_webhooks(standard: Channel) -> None:
    body = orjson.dumps(order("SO-SW9"))

    answer = await standard.post(ORDER_PATH, body, x_signed(body, SECRET))

    assert answer.status_code == 401
    assert standard.state.event_counts() == {}


@pytest.mark.parametrize(
    "broken",
    [
        {"webhook-id": ""},
        {"webhook-timestamp": "soon"},
        {"webhook-timestamp": "1e12"},
        {"webhook-signature": "v1"},
        {"webhook-signature": "v1,@@@"},
        {"webhook-signature": "v2,bm90LXVzZWQ="},
    ],
)
async def test_ill_formed_headers_get_401_never_500(standard: Channel, broken: dict) -> None:  # type: ignore[type-arg]
    body = orjson.dumps(order("SO-SW10"))

    answer = await standard.post(ORDER_PATH, body, {**signed(body), **broken})

    assert answer.status_code == 401


async def test_the_tolerance_setting_is_honoured_not_the_librarys_five_minutes(
    make_settings, loopback
) -> None:  # type: ignore[no-untyped-def]
    body = orjson.dumps(order("SO-SW11"))
    async with running_channel(
        make_settings,
        loopback,
        webhook={"scheme": "standard-webhooks", "tolerance_seconds": 60},
        secret=WHSEC,
    ) as narrow:
        # 2 minutes old: the library alone would accept it; the setting says 60 s.
        assert (
            await narrow.post(ORDER_PATH, body, signed(body, at=time.time() - 120))
        ).status_code == 401
    async with running_channel(
        make_settings,
        loopback,
        webhook={"scheme": "standard-webhooks", "tolerance_seconds": 900},
        secret=WHSEC,
    ) as wide:
        # 10 minutes old: beyond the library's own window, within the setting's.
        assert (
            await wide.post(ORDER_PATH, body, signed(body, at=time.time() - 600))
        ).status_code == 202
