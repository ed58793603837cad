"""A wall clock the tests move by hand, for the `schedule` library and the service.

`schedule` reads `datetime.datetime.now()` from its own module global; the clock swaps that
global for a copy of the datetime module whose `datetime.now()` answers the fake time.
Nothing else in the process is affected.
"""

from __future__ import annotations

import datetime as real_datetime
import types
from datetime import timedelta

import pytest
import schedule


class FakeWallClock:
    def __init__(self, start: real_datetime.datetime) -> None:
        self.now = start  # naive, server-local, as `schedule` works

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeWallClock:
        clock = self

        class FakeDatetime(real_datetime.datetime):
            @classmethod
            def now(cls, tz: real_datetime.tzinfo | None = None) -> FakeDatetime:  # type: ignore[override]
                moment = clock.now if tz is None else clock.now.astimezone(tz)
                return cls.combine(moment.date(), moment.timetz())

        module = types.ModuleType("datetime")
        module.__dict__.update(real_datetime.__dict__)
        module.datetime = FakeDatetime  # type: ignore[attr-defined]
        monkeypatch.setattr(schedule, "datetime", module)
        return self

    def aware(self) -> real_datetime.datetime:
        return self.now.astimezone()

    def set(self, hour: int, minute: int, *, days: int = 0) -> None:
        base = self.now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        self.now = base + timedelta(days=days)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
