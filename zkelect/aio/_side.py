"""An election's flips, replayed on the AsyncElection's event loop, in the order they happened.

The Standing (zkelect/_election/standing.py) tells its listener of each flip under its lock,
from whichever thread flipped; this listener hands the flip to the loop (``call_soon``
keeps the order) and nothing else. On the loop, a loss is replayed in this order:

1. the ``run_while_leader`` work is cancelled (``WorkRunner.lost``);
2. ``lead.lost`` is set for the loop (``await lead.lost.wait()`` returns);
3. ``on_revoked`` is posted to the callbacks.

So leader-only work hears of a loss before anyone else on the loop does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from zkelect.aio._callbacks import LoopCallbacks
from zkelect.aio._leadership import AsyncLeadership
from zkelect.aio._loop import call_soon, resolve
from zkelect.errors import ElectionStoppedError, ZkElectError
from zkelect.fencing.leadership import Leadership

__all__ = ["LoopSide"]


class LoopSide:
    """The Standing's FlipListener for one AsyncElection, and what the loop knows of it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        path: str,
        request_timeout: float,
        callbacks: LoopCallbacks,
        on_elected: Callable[[AsyncLeadership], Any] | None,
        on_revoked: Callable[[str], Any] | None,
    ) -> None:
        self.loop = loop
        self._path = path
        self._request_timeout = request_timeout
        self._callbacks = callbacks
        self._on_elected = on_elected
        self._on_revoked = on_revoked
        #: Our leadership as the loop knows it (None before the loop heard of a grant).
        self.leading: AsyncLeadership | None = None
        self.failure: ZkElectError | None = None
        self.closed = False
        self._waiters: set[asyncio.Future[AsyncLeadership]] = set()
        #: ``run_while_leader``'s hooks: told first of a grant and of a loss.
        self.gained: Callable[[AsyncLeadership], None] | None = None
        self.lost: Callable[[AsyncLeadership], None] | None = None

    # -- FlipListener: any thread, under the standing's lock; only hand over ------------------

    def elected(self, lead: Leadership) -> None:
        call_soon(self.loop, self._replay_elected, lead)

    def revoked(self, lead: Leadership) -> None:
        call_soon(self.loop, self._replay_revoked, lead)

    def failed(self, error: ZkElectError) -> None:
        call_soon(self.loop, self._replay_failed, error)

    # -- on the loop ----------------------------------------------------------------------------

    def _replay_elected(self, lead: Leadership) -> None:
        current = AsyncLeadership(lead, self._request_timeout)
        self.leading = current
        for waiter in self._waiters:
            resolve(waiter, current)
        if self.gained is not None:
            self.gained(current)
        self._callbacks.post(self._on_elected, current)

    def _replay_revoked(self, lead: Leadership) -> None:
        current = self.leading
        if current is None or current.leadership is not lead:
            return  # replayed in order: its grant came first, so this cannot happen
        self.leading = None
        if self.lost is not None:
            self.lost(current)  # 1. the work is cancelled first
        current.lost._set()  # 2. then lost.wait() returns
        # 3. then on_revoked, in the drainer's turn: after the work's cancelled step
        self._callbacks.post(self._on_revoked, lead.reason, now_if_idle=False)

    def _replay_failed(self, error: ZkElectError) -> None:
        self.failure = error
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(error)

    def close(self) -> None:
        """The election stopped: nobody waits for leadership any more."""
        self.closed = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ElectionStoppedError(f"election {self._path} was stopped"))

    async def wait(self, timeout: float | None) -> AsyncLeadership | None:
        """Our leadership once the loop knows of it; None after ``timeout``."""
        current = self.leading
        if current is not None and not current.lost.is_set():
            return current
        if self.failure is not None:
            raise self.failure
        if self.closed:
            raise ElectionStoppedError(f"election {self._path} was stopped")
        waiter: asyncio.Future[AsyncLeadership] = self.loop.create_future()
        self._waiters.add(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiters.discard(waiter)
