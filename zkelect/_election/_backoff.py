"""The candidacy's retry after a transient error: one pending at a time, on the session's
timers, the delay doubling (with jitter, so candidates that failed together do not retry
together) up to the configured maximum, and back to the start after a success."""

from __future__ import annotations

import random
from collections.abc import Callable

from zkelect._election.ports import SessionPort
from zkelect.config import ElectionConfig

__all__ = ["Backoff"]


class Backoff:
    def __init__(self, session: SessionPort, config: ElectionConfig) -> None:
        self._session = session
        self._initial = config.retry_initial_delay
        self._max = config.retry_max_delay
        self._delay = self._initial
        self.pending = False

    def schedule(self, retry: Callable[[], None]) -> None:
        """Call ``retry`` (on the timer thread) after the next delay, unless one is pending."""
        timers = self._session.timers
        if self.pending or timers is None:
            return
        self.pending = True
        delay = self._delay * random.uniform(0.5, 1.0)
        self._delay = min(self._delay * 2, self._max)
        timers.call_later(delay, retry)

    def succeeded(self) -> None:
        self._delay = self._initial
