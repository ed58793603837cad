"""A property of the intake, over a real socket: for any body and any headers, the answer is
either 202 with exactly one valid event stored for it, or a 4xx with nothing stored; never a
500; and the server keeps serving. Both signature schemes."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from order_export_tui.engine.runner import local_now
from order_export_tui.service.intake import Intake, IntakeServer, signature_for
from order_export_tui.service.webhook_events import CHECKS
from order_export_tui.state import ORDER_COMPLETED, PAYMENT_STATUS, StateStore
from tests.support.intake_server import SECRET, WHSEC
from tests.support.orders import VALID
from tests.support.ports import free_port

PATHS = {"/webhooks/order-completed": ORDER_COMPLETED, "/webhooks/payment-status": PAYMENT_STATUS}


@dataclass
class Served:
    scheme: str
    secret: str
    url: str
    database: Path

    def events(self) -> dict[int, tuple[str, bytes]]:
        reader = StateStore(self.database)
        try:
            rows = reader._db.execute("SELECT event_id, kind, payload FROM realtime_event")
            return {row[0]: (row[1], row[2]) for row in rows}
        finally:
            reader.close()


@pytest.fixture(scope="module", params=["x-signature", "standard-webhooks"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    scheme = request.param
    secret = WHSEC if scheme == "standard-webhooks" else SECRET
    database = tmp_path_factory.mktemp(scheme) / "state.sqlite"
    listen = f"127.0.0.1:{free_port()}"
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        state = StateStore(database, durable=True)
        intake = Intake(
            state=state,
            secret=secret,
            clock=local_now,
            on_accepted=lambda event_id: None,
            health=dict,
            scheme=scheme,
        )
        server = IntakeServer(intake, listen)
        await server.start()
        started.set()
        await stop.wait()
        await server.stop()
        state.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10), "the intake did not start"
    yield Served(scheme, secret, f"http://{listen}", database)
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes]:
    """(path, body): mostly the endpoint's own kind of event, often a little broken."""
    kind = draw(st.sampled_from(["order", "order", "payment", "payment", "json", "bytes"]))
    path = draw(st.sampled_from(sorted(PATHS)))
    if kind == "bytes":
        return path, draw(st.binary(max_size=300))
    if kind == "json":
        return path, json.dumps(draw(json_values)).encode()  # big ints, NaN too
    if draw(st.integers(0, 4)):  # mostly the matching endpoint
        path = "/webhooks/order-completed" if kind == "order" else "/webhooks/payment-status"
    if kind == "order":
        doc: dict[str, Any] = copy.deepcopy(VALID)
        doc["order_id"] = draw(
            st.sampled_from(["SO-1", "SO-2", "SO-3", "SO-4", "SO-5", " SO-1", "SO-\n1", "S" * 65])
        )
    else:
        doc = {
            "order_id": draw(st.sampled_from(["SO-1", "SO-9", "SO-8", "SO 1", "x" * 900])),
            "payment_status": draw(st.sampled_from(["paid", "refunded", "lost"])),
            "occurred_at": draw(
                st.sampled_from(["2026-11-27T10:25:00+00:00", "2026-11-27T11:30:00+02:00", "soon"])
            ),
        }
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        field = draw(st.sampled_from([*doc, "currency", "total", "lines", "extra"]))
        doc[field] = draw(json_values)
    return path, json.dumps(doc).encode()


header_names = st.sampled_from(
    ["x-signature", "webhook-id", "webhook-timestamp", "webhook-signature", "content-type"]
) | st.from_regex(r"x-[a-z]{1,10}", fullmatch=True)
header_values = st.from_regex(r"[\x20-\x7e]{0,80}", fullmatch=True).map(str.strip)


def sign(served: Served, body: bytes, how: str, msg_id: str) -> dict[str, str]:
    if how == "none":
        return {}
    secret = served.secret if how == "right" else "whsec_" + "d3Jvbmctc2VjcmV0LWtleS0xMjM0"
    if served.scheme == "x-signature":
        return {
            "X-Signature": signature_for(secret if how == "right" else "wrong-secret-123456", body)
        }
    stamp = datetime.now(UTC)
    try:
        signature = Webhook(secret).sign(msg_id, stamp, body.decode())
    except UnicodeDecodeError:
        signature = "v1,AAAA"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
    }


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    request=requests(),
    how=st.sampled_from(["right", "right", "right", "wrong", "none"]),
    msg_id=st.sampled_from(["msg_a", "msg_b"]) | st.uuids().map(lambda u: f"msg_{u.hex}"),
    noise=st.dictionaries(header_names, header_values, max_size=3),
)
def test_any_request_is_a_202_with_one_valid_event_or_a_4xx_with_nothing_stored(
    served: Served, request: tuple[str, bytes], how: str, msg_id: str, noise: dict[str, str]
) -> None:
    path, body = request
    headers = {**noise, **sign(served, body, how, msg_id)} if how != "none" else noise
    before = served.events()

    answer = httpx.post(served.url + path, content=body, headers=headers, timeout=10)

    after = served.events()
    event("accepted" if answer.status_code == 202 else "refused")
    assert answer.status_code != 500
    if answer.status_code == 202:
        event_id = answer.json()["event_id"]
        kind, payload = after[event_id]
        CHECKS[kind](orjson.loads(payload))  # what is stored is a valid event
        assert set(after) - set(before) <= {event_id}
    else:
        assert 400 <= answer.status_code < 500, answer.text
        assert after == before


def test_the_intake_still_serves_after_the_property_run(served: Served) -> None:
    body = orjson.dumps({**VALID, "order_id": f"SO-{time.time_ns()}"})
    headers = sign(served, body, "right", f"msg_{time.time_ns()}")

    answer = httpx.post(served.url + "/webhooks/order-completed", content=body, headers=headers)

    assert answer.status_code == 202
