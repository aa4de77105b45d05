"""``run_while_leader``'s work: one task per term, cancelled first on every loss.

The in-process twin of ``zkelect run`` (ops/supervisor.py), with the same ordering:

1. elected: ``work(lead)`` starts as a task (a term), unless the previous term's work still
   runs: never two at once (it is awaited for up to ``grace``; then this term is resigned);
2. leadership lost (any reason): the task is cancelled before anything else on the loop
   hears of the loss (``LoopSide``), then awaited up to ``grace``; a task still running
   then ignored its cancellation: logged (``work_abandoned``) and left to itself (its
   fenced writes are refused: R8);
3. a planned step down (``resign()``, ``stop()``): the work is cancelled and drained first
   (``quiesce``), and only then is the node deleted, so no successor leads while it runs
   (as ``zkelect run`` stops its child before leaving);
4. the work ends on its own while leading (returns or raises): ``finished`` says so, and
   ``run_while_leader`` releases leadership and returns (or re-raises).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from zkelect._logs import emit
from zkelect.aio._leadership import AsyncLeadership
from zkelect.aio._loop import resolve
from zkelect.errors import LeadershipLostError, StaleEpochError

__all__ = ["Work", "WorkRunner"]

log = logging.getLogger("zkelect")

#: ``async def work(lead: AsyncLeadership) -> None``.
Work = Callable[[AsyncLeadership], Awaitable[Any]]
# What a work is expected to raise on its way down after a loss.
_LOSS_ERRORS = (LeadershipLostError, StaleEpochError)


class WorkRunner:
    """The work's tasks for one ``run_while_leader`` call (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        path: str,
        candidate_id: str,
        work: Work,
        grace: float,
        resign_now: Callable[[], Awaitable[bool]],
    ) -> None:
        self._loop = loop
        self._path = path
        self._candidate_id = candidate_id
        self._work = work
        self.grace = grace
        self._resign_now = resign_now
        self.task: asyncio.Task[Any] | None = None
        self._lead: AsyncLeadership | None = None
        self._paused = False
        #: Set when the work ended on its own while leading: its exception, or None.
        self.finished: asyncio.Future[BaseException | None] = loop.create_future()

    # -- told by LoopSide, on the loop ----------------------------------------------------------

    def gained(self, lead: AsyncLeadership) -> None:
        """1. A new term: run the work (after the previous term's, if it still runs)."""
        if self._paused or self.finished.done():
            return
        previous, self._lead = self.task, lead
        emit(
            "work_started",
            "zkelect %s: leader-only work started (epoch %d)",
            self._path,
            lead.epoch,
            election=self._path,
            candidate=self._candidate_id,
            epoch=lead.epoch,
        )
        task = self._loop.create_task(self._term(lead, previous))
        task.add_done_callback(lambda done: self._ended(done, lead))
        self.task = task

    def lost(self, lead: AsyncLeadership) -> None:
        """2. The term is over: cancel its work at once, then watch it drain."""
        task = self.task
        if task is None or task.done() or self._lead is not lead:
            return
        task.cancel()
        self._cancelled(lead, lead.reason or "lost")
        self._loop.create_task(self._drained(task, lead))

    # -- planned steps down -----------------------------------------------------------------------

    async def quiesce(self, why: str) -> None:
        """3. Cancel the work and wait for it (up to ``grace``); none starts until ``resume``.
        ``why``: ``resign`` or ``stop`` (the work sees ``lead.lost`` not set yet)."""
        self._paused = True
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            self._cancelled(self._lead, why)
            await self._drained(task, self._lead)

    def resume(self, leading: AsyncLeadership | None) -> None:
        """Start terms again; ``leading``: we still lead (a resign that could not delete)."""
        self._paused = False
        idle = self.task is None or self.task.done()
        if leading is not None and not leading.lost.is_set() and idle:
            self.gained(leading)

    # -- the tasks --------------------------------------------------------------------------------

    async def _term(self, lead: AsyncLeadership, previous: asyncio.Task[Any] | None) -> None:
        if previous is not None and not previous.done():
            done, _ = await asyncio.wait({previous}, timeout=self.grace)
            if not done:
                emit(
                    "work_not_restarted",
                    "zkelect %s: elected again while the previous work still runs (it ignored "
                    "its cancellation): resigning instead of running the work twice",
                    self._path,
                    level=logging.ERROR,
                    election=self._path,
                    candidate=self._candidate_id,
                    epoch=lead.epoch,
                )
                await self._resign_now()
                return
        await self._work(lead)

    def _ended(self, task: asyncio.Task[Any], lead: AsyncLeadership) -> None:
        """4. The work's own end while leading releases leadership; after a loss it is
        only logged (the candidate campaigns on)."""
        if task.cancelled():
            return
        error = task.exception()
        if lead.lost.is_set() or self._paused or self._lead is not lead:
            if error is not None and not isinstance(error, _LOSS_ERRORS):
                log.warning(
                    "zkelect %s: the work raised after its leadership ended",
                    self._path,
                    exc_info=error,
                )
            return
        resolve(self.finished, error)

    def _cancelled(self, lead: AsyncLeadership | None, reason: str) -> None:
        emit(
            "work_cancelled",
            "zkelect %s: leader-only work cancelled (%s)",
            self._path,
            reason,
            election=self._path,
            candidate=self._candidate_id,
            epoch=None if lead is None else lead.epoch,
            reason=reason,
        )

    async def _drained(self, task: asyncio.Task[Any], lead: AsyncLeadership | None) -> None:
        done, _ = await asyncio.wait({task}, timeout=self.grace)
        if done:
            return
        emit(
            "work_abandoned",
            "zkelect %s: the work ignored its cancellation for %gs; left running (its "
            "fenced writes are refused), never started twice",
            self._path,
            self.grace,
            level=logging.ERROR,
            election=self._path,
            candidate=self._candidate_id,
            epoch=None if lead is None else lead.epoch,
        )
