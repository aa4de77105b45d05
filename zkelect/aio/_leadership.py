"""What an AsyncElection's leader holds: the Leadership, awaitable, with fenced writes that
never block the loop.

A fenced commit is sent at once and its answer awaited on the loop (kazoo calls back on its
thread); only the rare error path, which reads who leads now, runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING

from zkelect._zookeeper.outcomes import Retryable
from zkelect.aio._loop import answered, call_soon
from zkelect.errors import ZkElectError
from zkelect.fencing.leadership import (
    COMMIT_FAILURES,
    FencedTransaction,
    FencingToken,
    Leadership,
)

if TYPE_CHECKING:
    from zkelect._zookeeper.requests import Pending

__all__ = ["AsyncFencedTransaction", "AsyncLeadership", "LostSignal"]


class LostSignal:
    """``lost``, for the loop: ``await lost.wait()``; ``lost.event`` is the thread-safe
    ``threading.Event`` (``Leadership.lost``), set first, from whichever thread saw the loss.

    ``wait()`` returns once the loss has reached the loop, which is after an AsyncElection's
    ``run_while_leader`` work was cancelled: leader-only work hears of a loss first."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self._on_loop: asyncio.Event | None = None  # made by the first wait(): most never do
        self._replayed = False

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> bool:
        if not self._replayed:
            if self._on_loop is None:
                self._on_loop = asyncio.Event()
            await self._on_loop.wait()
        return True

    def _set(self) -> None:
        """On the loop, when the AsyncElection replays the loss there."""
        self._replayed = True
        if self._on_loop is not None:
            self._on_loop.set()

    def __repr__(self) -> str:
        return f"<LostSignal {'set' if self.is_set() else 'unset'}>"


class AsyncLeadership:
    """The handle an AsyncElection's leader holds: ``zkelect.Leadership``'s fields and local
    checks, ``lost`` awaitable, and fenced writes to await (R8)."""

    def __init__(self, leadership: Leadership, request_timeout: float) -> None:
        #: The threaded handle: for threads the work hands off to, FencingGuard headers, ...
        self.leadership = leadership
        self.lost = LostSignal(leadership.lost)
        #: The thread-safe event (the same as ``leadership.lost`` and ``lost.event``).
        self.lost_event = leadership.lost
        self._request_timeout = request_timeout

    @property
    def token(self) -> FencingToken:
        return self.leadership.token

    @property
    def epoch(self) -> int:
        return self.leadership.epoch

    @property
    def node_path(self) -> str:
        return self.leadership.node_path

    @property
    def granted_zxid(self) -> int:
        return self.leadership.granted_zxid

    @property
    def reason(self) -> str | None:
        return self.leadership.reason

    @property
    def stop_by(self) -> float | None:
        return self.leadership.stop_by

    def lease_remaining(self) -> float:
        return self.leadership.lease_remaining()

    def is_valid(self) -> bool:
        return self.leadership.is_valid()

    def check(self) -> None:
        """Raise LeadershipLostError unless ``is_valid()`` (a local check: fence the write)."""
        self.leadership.check()

    def transaction(self) -> AsyncFencedTransaction:
        """A multi-op transaction that commits only while our candidate node exists."""
        return AsyncFencedTransaction(self)

    async def set_data(self, path: str, value: bytes, version: int = -1) -> None:
        """Fenced ``set``: applied only while this leadership holds."""
        await self.transaction().set_data(path, value, version).commit()

    async def create(
        self, path: str, value: bytes = b"", *, ephemeral: bool = False, sequence: bool = False
    ) -> str:
        """Fenced ``create``; returns the created path (with its sequence, if any)."""
        txn = self.transaction().create(path, value, ephemeral=ephemeral, sequence=sequence)
        return str((await txn.commit())[0])

    async def delete(self, path: str, version: int = -1) -> None:
        """Fenced ``delete``: applied only while this leadership holds."""
        await self.transaction().delete(path, version).commit()

    def __repr__(self) -> str:
        return repr(self.leadership).replace("<Leadership", "<AsyncLeadership", 1)


class AsyncFencedTransaction:
    """``FencedTransaction`` (fencing/leadership.py) with ``await commit()``."""

    def __init__(self, lead: AsyncLeadership) -> None:
        self._fenced = FencedTransaction(lead.leadership)
        self._timeout = lead._request_timeout

    def create(
        self, path: str, value: bytes = b"", *, ephemeral: bool = False, sequence: bool = False
    ) -> AsyncFencedTransaction:
        self._fenced.create(path, value, ephemeral=ephemeral, sequence=sequence)
        return self

    def set_data(self, path: str, value: bytes, version: int = -1) -> AsyncFencedTransaction:
        self._fenced.set_data(path, value, version)
        return self

    def delete(self, path: str, version: int = -1) -> AsyncFencedTransaction:
        self._fenced.delete(path, version)
        return self

    def check(self, path: str, version: int) -> AsyncFencedTransaction:
        self._fenced.check(path, version)
        return self

    async def commit(self) -> list[object]:
        """Apply every operation, or none; results exclude the fence check. Raises what
        ``FencedTransaction.commit`` raises.

        Cancelled while the answer is awaited (leadership lost meanwhile), the write stays
        in flight and its outcome is still recorded (metrics; a refusal revokes)."""
        fenced = self._fenced
        pending = fenced.send()
        try:
            in_time = await answered(pending, self._timeout)
        except asyncio.CancelledError:
            loop = asyncio.get_running_loop()
            pending.when_done(lambda: call_soon(loop, self._settle_unheard, pending))
            raise
        if not in_time:
            error = await asyncio.to_thread(fenced.failure, Retryable("no answer in time"))
            raise error from None
        try:
            return fenced.results(pending)
        except COMMIT_FAILURES as exc:
            failed = exc
        error = await asyncio.to_thread(fenced.failure, failed)
        raise error from None

    def _settle_unheard(self, pending: Pending) -> None:
        """The outcome of a commit whose caller was cancelled: recorded, nobody told."""
        fenced = self._fenced
        try:
            fenced.results(pending)
        except COMMIT_FAILURES as exc:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                asyncio.get_running_loop().run_in_executor(None, _quietly, fenced, exc)


def _quietly(fenced: FencedTransaction, exc: BaseException) -> ZkElectError:
    return fenced.failure(exc)
