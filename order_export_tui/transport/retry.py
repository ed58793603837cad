"""The retry policy: what fails transiently is tried again, boundedly.

At most `max_retries` more attempts, every one of them starting within
`max_retry_interval_seconds` of the first failure. Delays grow exponentially with jitter and
never overrun the time left; a rate-limit reset that lands beyond the window ends the retries
at once instead of waiting for nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

BASE_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 30.0


class TransientError(Exception):
    """A failure worth retrying: a transport error, 429 or 5xx.

    `retry_after` is the platform's own word on when to come back, in seconds from now.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetriesExhaustedError(Exception):
    """Retries did not help within the policy's bounds; the last error is the cause."""

    def __init__(self, what: str, retries: int, last_error: TransientError, why: str) -> None:
        self.what = what
        self.retries = retries
        self.last_error = last_error
        super().__init__(f"{what} failed after {retries} retries ({why}): {last_error}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int
    window_seconds: float
    base_delay: float = BASE_DELAY_SECONDS
    max_delay: float = MAX_DELAY_SECONDS


RetryListener = Callable[[str, int, float, TransientError], None]


class Retrier:
    """Runs one request at a time under a `RetryPolicy`, counting every retry it makes.

    `interrupt`: set when the run is being cancelled; a wait that holds no work of ours
    (`transport.waiting.interruptible`) ends at once then.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        on_retry: RetryListener | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        interrupt: asyncio.Event | None = None,
    ) -> None:
        self.policy = policy
        self.interrupt = interrupt
        self.retried = 0
        self._on_retry = on_retry
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def call(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Await `attempt()` until it succeeds or the policy gives up.

        Only `TransientError` is retried; anything else passes through at once.
        """
        first_failure: float | None = None
        retries = 0
        while True:
            try:
                return await attempt()
            except TransientError as error:
                now = self._clock()
                if first_failure is None:
                    first_failure = now
                delay = self._next_delay(what, retries, error, now - first_failure)
                retries += 1
                self.retried += 1
                if self._on_retry is not None:
                    self._on_retry(what, retries, delay, error)
                await self._sleep(delay)

    def _next_delay(self, what: str, retries: int, error: TransientError, elapsed: float) -> float:
        policy = self.policy
        if retries >= policy.max_retries:
            raise RetriesExhaustedError(what, retries, error, "no retries left") from error
        time_left = policy.window_seconds - elapsed
        if time_left <= 0:
            raise RetriesExhaustedError(
                what, retries, error, f"retry window of {policy.window_seconds:g}s is over"
            ) from error
        if error.retry_after is not None:
            if error.retry_after > time_left:
                raise RetriesExhaustedError(
                    what,
                    retries,
                    error,
                    f"the platform asks to wait {error.retry_after:g}s,"
                    f" beyond the {time_left:.1f}s left of the retry window",
                ) from error
            return max(error.retry_after, 0.0)
        backoff = min(policy.max_delay, policy.base_delay * 2**retries)
        # "Equal jitter": at least half the backoff, so retries never bunch up at zero.
        delay = backoff / 2 + self._rng.uniform(0, backoff / 2)
        return min(delay, time_left)
