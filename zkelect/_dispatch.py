"""A handful of threads for many elections: actors on a small pool, one timer thread
and one in-order callback thread per session.

kazoo's own Election blocks a thread per election; with thousands of elections on
one session that is thousands of threads. Here every election is an *actor*: its
events queue in a mailbox and are handled one at a time, in order, by whichever
pool thread is free. So an election's state needs no locks of its own, and the
thread count does not grow with the number of elections.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from zkelect.clock import Clock, monotonic_clock, on_advance

__all__ = ["Actor", "Notifier", "Timers", "WorkerPool"]

log = logging.getLogger("zkelect")
M = TypeVar("M")
_STOP = object()


class WorkerPool:
    """N daemon threads running submitted callables; exceptions are logged, never lost."""

    def __init__(self, threads: int, name: str) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-worker-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def alive(self) -> bool:
        """Every worker thread runs (a liveness probe's question)."""
        return all(thread.is_alive() for thread in self._threads)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                item()  # type: ignore[operator]
            except Exception:  # pragma: no cover - actors catch their own errors
                log.exception("zkelect worker task failed")

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout=10)


class Actor(Generic[M]):
    """A mailbox whose messages one pool thread at a time hands to ``handler``, in order."""

    _BATCH = 32  # messages per turn, so one busy actor cannot starve the others

    def __init__(self, pool: WorkerPool, handler: Callable[[M], None]) -> None:
        self._pool = pool
        self._handler = handler
        self._lock = threading.Lock()
        self._mailbox: deque[M] = deque()
        self._scheduled = False

    def post(self, message: M) -> None:
        with self._lock:
            self._mailbox.append(message)
            if self._scheduled:
                return
            self._scheduled = True
        self._pool.submit(self._turn)

    def run_here(self, message: M) -> None:
        """Handle ``message`` on the calling thread if the actor is idle (no pool hop: a
        successor's flip from kazoo's callback thread, a resign from its caller), else post
        it. Handled in order all the same: the mailbox is empty and no turn is running, and
        what arrives meanwhile waits for a pool turn. The handler must not block for long
        on a thread that other work needs (kazoo's callback thread)."""
        with self._lock:
            if self._scheduled:
                self._mailbox.append(message)
                return
            self._scheduled = True
        self._handle(message)
        self._continue()

    def _turn(self) -> None:
        for _ in range(self._BATCH):
            with self._lock:
                if not self._mailbox:
                    self._scheduled = False
                    return
                message = self._mailbox.popleft()
            self._handle(message)
        self._continue()

    def _handle(self, message: M) -> None:
        try:
            self._handler(message)
        except Exception:
            log.exception("zkelect: unhandled error in election step")

    def _continue(self) -> None:
        """After a turn: idle if the mailbox is empty, else another turn on the pool."""
        with self._lock:
            if not self._mailbox:
                self._scheduled = False
                return
        self._pool.submit(self._turn)


class TimerHandle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """One thread firing callbacks at deadlines on ``clock``. Callbacks must be quick.

    The real clock is read as ``time.monotonic`` itself (no wrapper call per timer); a
    ManualClock wakes the thread when it is advanced, so its timers fire without real waits.
    """

    def __init__(self, name: str, clock: Clock = monotonic_clock) -> None:
        self._now: Clock = time.monotonic if clock is monotonic_clock else clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, TimerHandle, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._stopped = False
        #: When the last callback ran (on the timers' clock): a liveness probe's question.
        self.fired_at = self._now()
        self._thread = threading.Thread(target=self._run, name=f"{name}-timers", daemon=True)
        self._thread.start()
        on_advance(clock, self._wake)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle()
        with self._cond:
            deadline = self._now() + max(0.0, delay)
            heapq.heappush(self._heap, (deadline, next(self._counter), handle, fn))
            self._cond.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._heap:
                        wait = self._heap[0][0] - self._now()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _, _, handle, fn = heapq.heappop(self._heap)
            if not handle.cancelled:
                try:
                    fn()
                except Exception:
                    log.exception("zkelect timer callback failed")
                self.fired_at = self._now()

    def shutdown(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)


class Notifier:
    """Runs user callbacks on one thread, in the order they were posted.

    One thread keeps on_elected / on_revoked in order for every election of the
    session; a callback that blocks delays the callbacks queued behind it (but
    never leadership itself: ``Leadership.lost`` is set before callbacks run).
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"{name}-callbacks", daemon=True)
        self._thread.start()

    def post(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                item()  # type: ignore[operator]
            except Exception:
                log.exception("zkelect: a user callback raised")

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop after the callbacks already queued have run."""
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=timeout)
