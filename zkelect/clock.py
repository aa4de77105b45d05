"""An injectable monotonic clock (tests drive time by hand instead of sleeping).

Every timer of an election reads its clock: the session's ``Timers`` and the retry pause
of a fenced write's error path (``sleep``). With the real clock both cost nothing extra;
with a ``ManualClock`` a test moves time with ``advance()``, which wakes whoever waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "ManualClock", "monotonic_clock", "on_advance", "sleep"]


class Clock(Protocol):
    """Returns seconds from an arbitrary, never-decreasing origin."""

    def __call__(self) -> float: ...


def monotonic_clock() -> float:
    """The real clock: ``time.monotonic``."""
    return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; for unit tests of time-based logic.

    ``advance()`` wakes the threads waiting on it (a ``Timers`` thread, a ``sleep``), so
    code that waits on time can run on a ManualClock without real waits.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._cond = threading.Condition()
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._cond:
            self.now += seconds
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            listener()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (quick; on the advancing thread) after every ``advance()``."""
        with self._cond:
            self._listeners.append(listener)

    def sleep(self, seconds: float) -> None:
        """Return once the clock has moved ``seconds`` on (``advance`` from another thread)."""
        with self._cond:
            until = self.now + seconds
            self._cond.wait_for(lambda: self.now >= until)


def on_advance(clock: Clock, listener: Callable[[], None]) -> None:
    """Have ``listener`` called whenever ``clock`` jumps (a ManualClock); a real clock never
    jumps, so nothing is registered for it."""
    if isinstance(clock, ManualClock):
        clock.subscribe(listener)


def sleep(clock: Clock, seconds: float) -> None:
    """Pause for ``seconds`` of ``clock``'s time: ``time.sleep`` unless it is a ManualClock."""
    if isinstance(clock, ManualClock):
        clock.sleep(seconds)
    else:
        time.sleep(seconds)
