"""The session's window of batched creates in flight (``start(wait=False)``, ``AsyncElection``).

kazoo's connection thread writes and reads on one thread: with thousands of requests
outstanding the server stops reading (its outstanding limit) while kazoo is blocked writing,
until the connection drops. So at most ``size`` batched creates are in flight; a caller waits
for a slot, blocking (``acquire``, a thread) or not (``when_free``, an event loop: the slot is
handed to its callback by the ``release`` that frees it, first come first served).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

__all__ = ["JoinSlots"]


class JoinSlots:
    """A counting semaphore whose waiters may be callbacks as well as threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._free = size
        self._cond = threading.Condition(threading.Lock())
        self._callbacks: collections.deque[Callable[[], None]] = collections.deque()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a slot; False if none came free within ``timeout`` (or at once, not blocking)."""
        with self._cond:
            if not blocking:
                return self._take()
            return self._cond.wait_for(self._take, timeout)

    def when_free(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once a slot is taken for it: now (on this thread) if one is
        free, else from the ``release`` that frees one (any thread; it must be quick)."""
        with self._cond:
            if not self._take():
                self._callbacks.append(callback)
                return
        callback()

    def release(self) -> None:
        with self._cond:
            if self._callbacks:  # handed over: the slot stays taken
                callback = self._callbacks.popleft()
            else:
                if self._free >= self._size:
                    raise ValueError("JoinSlots released more often than acquired")
                self._free += 1
                self._cond.notify()
                return
        callback()

    def _take(self) -> bool:
        # Waiting callbacks first: a thread that polls must not overtake them for ever.
        if self._free > 0 and not self._callbacks:
            self._free -= 1
            return True
        return False
