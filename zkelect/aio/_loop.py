"""Handing news from zkelect's threads to an event loop, and waiting on it there.

The election runs on the session's threads (its actor, kazoo's connection thread, the
timers); an AsyncElection's loop hears of it through ``call_soon``: one mailbox per loop,
emptied in the order things were posted. Nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from zkelect._zookeeper.requests import Pending

log = logging.getLogger("zkelect")

__all__ = ["answered", "call_soon", "resolve", "waited"]

_T = TypeVar("_T")


def call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """``fn(*args)`` on ``loop``, from any thread, after what was handed over before it;
    nothing once the loop is closed (there is nobody left to tell)."""
    mailbox = _mailboxes.get(loop)
    if mailbox is None:
        with _mailboxes_lock:
            mailbox = _mailboxes.setdefault(loop, _Mailbox(loop))
    mailbox.post(fn, args)


class _Mailbox:
    """One loop's hand-overs: a burst of them (10,000 elections joining, each answered on a
    zkelect thread) wakes the loop once, not once each (``call_soon_threadsafe`` writes to
    the loop's wake-up socket every time); they run in the order they were posted."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # the mailboxes' keys: a strong one would keep it
        self._lock = threading.Lock()
        self._items: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._scheduled = False

    def post(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        with self._lock:
            self._items.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        loop = self._loop()
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed
                loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        with self._lock:
            items, self._items = self._items, collections.deque()
            self._scheduled = False
        for fn, args in items:
            try:
                fn(*args)
            except Exception:  # pragma: no cover - ours never raise; the others must run
                log.exception("zkelect: a hand-over to the event loop failed")


_mailboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Mailbox] = (
    weakref.WeakKeyDictionary()
)
_mailboxes_lock = threading.Lock()


def resolve(future: asyncio.Future[_T], value: _T) -> None:
    if not future.done():
        future.set_result(value)


async def answered(pending: Pending, timeout: float) -> bool:
    """Wait until ZooKeeper answered ``pending`` (kazoo calls back on its thread); False
    after ``timeout``. If the caller is cancelled meanwhile, the request stays in flight."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()
    pending.when_done(lambda: call_soon(loop, resolve, done, True))
    timer = loop.call_later(timeout, resolve, done, False)
    try:
        return await done
    finally:
        timer.cancel()


async def waited(future: concurrent.futures.Future[_T], timeout: float) -> _T:
    """The result of a future that a zkelect thread answers, awaited on the loop; raises
    asyncio.TimeoutError after ``timeout``. The future itself is left alone (its thread
    answers it later; a cancelled one would make that thread fail). One loop future and one
    timer: this is on the handover's path (resign) and on every start."""
    loop = asyncio.get_running_loop()
    mine: asyncio.Future[_T] = loop.create_future()
    future.add_done_callback(lambda answered: call_soon(loop, _copy, answered, mine))
    timer = loop.call_later(timeout, _time_out, mine)
    try:
        return await mine
    finally:
        timer.cancel()


def _copy(answered: concurrent.futures.Future[_T], mine: asyncio.Future[_T]) -> None:
    if mine.done():
        return
    error = answered.exception()
    if error is not None:
        mine.set_exception(error)
    else:
        mine.set_result(answered.result())


def _time_out(mine: asyncio.Future[Any]) -> None:
    if not mine.done():
        mine.set_exception(asyncio.TimeoutError())
