"""An injectable monotonic clock (tests drive time by hand instead of sleeping)."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "monotonic_clock"]


class Clock(Protocol):
    """Returns seconds from an arbitrary, never-decreasing origin."""

    def __call__(self) -> float: ...


def monotonic_clock() -> float:
    """The real clock: ``time.monotonic``."""
    return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; for unit tests of time-based logic."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self.now += seconds
