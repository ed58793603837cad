"""The retry policy and how HTTP answers are judged transient."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.transport.http import display_url, retry_after_seconds
from order_export_tui.transport.retry import (
    Retrier,
    RetriesExhaustedError,
    RetryPolicy,
    TransientError,
)
from tests.conftest import FakeClock


def failing(times: int, error: Exception | None = None):  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    async def attempt() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error or TransientError("HTTP 503")
        return "ok"

    return attempt, calls


def retrier(clock: FakeClock, retries: int, window: float) -> Retrier:
    return Retrier(RetryPolicy(retries, window), clock=clock.monotonic, sleep=clock.sleep)


async def test_succeeds_after_transient_failures(fake_clock: FakeClock) -> None:
    attempt, calls = failing(2)
    r = retrier(fake_clock, 3, 60)
    assert await r.call("PUT import", attempt) == "ok"
    assert calls["n"] == 3
    assert r.retried == 2


async def test_never_more_than_max_retries(fake_clock: FakeClock) -> None:
    attempt, calls = failing(10)
    r = retrier(fake_clock, 3, 600)
    with pytest.raises(RetriesExhaustedError, match="no retries left"):
        await r.call("PUT import", attempt)
    assert calls["n"] == 4  # the first attempt and three retries
    assert r.retried == 3


async def test_every_retry_starts_within_the_window(fake_clock: FakeClock) -> None:
    attempt, _ = failing(1000)
    r = retrier(fake_clock, 100, 5)
    start = fake_clock.now
    with pytest.raises(RetriesExhaustedError, match="retry window"):
        await r.call("PUT import", attempt)
    assert fake_clock.now - start <= 5 + 1e-9  # float sums
    assert 0 < r.retried < 100


async def test_zero_retries_fails_on_the_first_error(fake_clock: FakeClock) -> None:
    attempt, calls = failing(1)
    with pytest.raises(RetriesExhaustedError):
        await retrier(fake_clock, 0, 60).call("PUT import", attempt)
    assert calls["n"] == 1


async def test_retry_after_is_honoured_when_it_fits(fake_clock: FakeClock) -> None:
    attempt, _ = failing(1, TransientError("HTTP 429", retry_after=7))
    await retrier(fake_clock, 3, 60).call("PUT import", attempt)
    assert fake_clock.sleeps == [7]


async def test_retry_after_beyond_the_window_ends_retries_at_once(fake_clock: FakeClock) -> None:
    attempt, calls = failing(1, TransientError("HTTP 429", retry_after=120))
    with pytest.raises(RetriesExhaustedError, match="asks to wait 120s"):
        await retrier(fake_clock, 3, 60).call("PUT import", attempt)
    assert calls["n"] == 1
    assert fake_clock.sleeps == []


async def test_other_errors_pass_through_without_retry(fake_clock: FakeClock) -> None:
    attempt, calls = failing(1, ValueError("bad data"))
    with pytest.raises(ValueError):
        await retrier(fake_clock, 3, 60).call("PUT import", attempt)
    assert calls["n"] == 1


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "Fri, 27 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"X-RateLimit-Reset": "45"}, 45.0),  # seconds from now
        ({"X-RateLimit-Reset": str(1_795_780_800 + 20)}, 20.0),  # a Unix time
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], seconds: float | None) -> None:
    now = 1_795_780_800.0  # 2026-11-27T12:00:00Z
    assert retry_after_seconds(httpx.Headers(headers), now=now) == seconds


# --- URLs fit to show -------------------------------------------------------------------------


def test_display_url_drops_user_info_query_and_fragment() -> None:
    assert (
        display_url("https://ops:pw@bc.example:8443/v2.0/t/production/api/v2.0?x=1#f")
        == "https://bc.example:8443/v2.0/t/production/api/v2.0"
    )
    assert display_url("http://127.0.0.1:8092/3.0") == "http://127.0.0.1:8092/3.0"


@settings(max_examples=150, deadline=None)
@given(
    user=st.text(alphabet=st.characters(blacklist_characters="@/?#"), max_size=12),
    # Upper-case "PW" first: the host and the path below cannot hold it by chance.
    password=st.text(alphabet=st.characters(blacklist_characters="@/?#"), max_size=12).map(
        lambda text: "PW" + text
    ),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-./", max_size=20),
)
def test_display_url_never_shows_the_password(user: str, password: str, path: str) -> None:
    shown = display_url(f"https://{user}:{password}@host.example/{path}?key={password}")

    assert password not in shown
    assert shown.startswith("https://host.example/")
