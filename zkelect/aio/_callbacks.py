"""An AsyncElection's callbacks, run on its event loop one at a time, in order.

Plain functions are called (at once when nothing is queued before them); coroutine
functions are awaited before the next callback runs,
so ``on_elected`` is done before the ``on_revoked`` that follows it starts (the order
``Election`` guarantees on its callback thread). A callback that raises is logged; the
others still run.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["LoopCallbacks"]

log = logging.getLogger("zkelect")


class LoopCallbacks:
    """A queue of callbacks drained by one task on the loop."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._queue: collections.deque[tuple[Callable[[Any], Any], Any]] = collections.deque()
        self._drainer: asyncio.Task[None] | None = None

    def post(
        self, callback: Callable[[Any], Any] | None, argument: Any, *, now_if_idle: bool = True
    ) -> None:
        """Run ``callback(argument)`` after those posted before it (on the loop): a plain
        function with nothing before it at once (``now_if_idle``), else in the drainer's
        turn, which comes after the steps already scheduled (a cancelled work's)."""
        if callback is None:
            return
        idle = not self._queue and (self._drainer is None or self._drainer.done())
        if now_if_idle and idle and not _is_coroutine_function(callback):
            self._call(callback, argument)  # no loop turn: the handover's last hop
            return
        self._queue.append((callback, argument))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def flush(self) -> None:
        """Wait until every callback posted so far has run."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        while self._queue:
            callback, argument = self._queue.popleft()
            result = self._call(callback, argument)
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception:
                    log.exception("zkelect %s: callback %r failed", self._path, callback)

    def _call(self, callback: Callable[[Any], Any], argument: Any) -> Any:
        try:
            return callback(argument)
        except Exception:
            log.exception("zkelect %s: callback %r failed", self._path, callback)
            return None


@functools.lru_cache(maxsize=256)
def _is_coroutine_function(callback: Callable[[Any], Any]) -> bool:
    # Asked once per callback, not once per call: inspect's answer is not free, and 10,000
    # elections usually share one callback.
    return inspect.iscoroutinefunction(callback)
