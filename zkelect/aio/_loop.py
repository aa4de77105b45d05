"""Handing news from zkelect's threads to an event loop, and waiting on it there.

The election runs on the session's threads (its actor, kazoo's connection thread, the
timers); an AsyncElection's loop hears of it through ``call_soon_threadsafe``, whose
callbacks run in the order they were handed over. Nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from zkelect._zookeeper.requests import Pending

__all__ = ["answered", "call_soon", "resolve", "waited"]

_T = TypeVar("_T")


def call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """``fn(*args)`` on ``loop``, from any thread; nothing once the loop is closed (there is
    nobody left to tell)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


def resolve(future: asyncio.Future[_T], value: _T) -> None:
    if not future.done():
        future.set_result(value)


async def answered(pending: Pending, timeout: float) -> bool:
    """Wait until ZooKeeper answered ``pending`` (kazoo calls back on its thread); False
    after ``timeout``. If the caller is cancelled meanwhile, the request stays in flight."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    pending.when_done(lambda: call_soon(loop, resolve, done, None))
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except asyncio.TimeoutError:
        return False
    return True


async def waited(future: concurrent.futures.Future[_T], timeout: float) -> _T:
    """The result of a future that a zkelect thread answers, awaited on the loop; raises
    TimeoutError after ``timeout`` (the future itself is left alone: its thread answers it
    later, and a cancelled future would make that thread fail)."""
    return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
