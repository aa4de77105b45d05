"""AsyncElection: an Election for asyncio, usable from one event loop without blocking it.

It wraps one threaded ``Election`` (``.election``): the candidacy runs on the session's
threads as always, and the loop hears of each flip through the Standing's listener
(``LoopSide``), in order. What would block the loop is either sent without waiting and its
answer awaited (joins, resigns, stops, fenced writes), or, where it is rare and may take a
round trip or two (a first connect, reads, a fenced write's error path), run in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from typing import Any

from zkelect._election._setup import check_arguments
from zkelect._election.election import END, Election
from zkelect._election.messages import Lifecycle, Resign, Start
from zkelect._election.nodes import LeaderInfo
from zkelect._election.switchover_request import SwitchoverResult
from zkelect._zookeeper.outcomes import ConnectionState
from zkelect._zookeeper.session import Session
from zkelect.aio._callbacks import LoopCallbacks
from zkelect.aio._leadership import AsyncLeadership
from zkelect.aio._loop import call_soon, resolve, waited
from zkelect.aio._side import LoopSide
from zkelect.aio._work import Work, WorkRunner
from zkelect.clock import Clock, monotonic_clock
from zkelect.config import ElectionConfig, check_seconds, check_timeout
from zkelect.errors import ConfigurationError, ElectionTimeoutError, ZkElectError
from zkelect.fencing.leadership import Leadership
from zkelect.metrics import MetricsRecorder
from zkelect.security import DigestAuth, ElectionAcl, SaslOptions, TlsOptions

__all__ = ["AsyncElection"]

#: ``run_while_leader``'s default bound on a cancelled work's drain (as ``zkelect run --grace``).
DEFAULT_GRACE = 10.0


class AsyncElection:
    """Leader election on one ZooKeeper path, for asyncio. Same arguments as ``Election``.

    Callbacks may be functions or coroutine functions; all run on the loop, one at a time,
    in ``Election``'s order: ``on_elected(AsyncLeadership)``, then ``on_revoked(reason)``
    before any new ``on_elected``; ``on_leader_change(LeaderInfo | None)``.
    """

    def __init__(
        self,
        client_or_hosts: Any,
        path: str,
        *,
        candidate_id: str | None = None,
        config: ElectionConfig | None = None,
        on_elected: Callable[[AsyncLeadership], Any] | None = None,
        on_revoked: Callable[[str], Any] | None = None,
        on_leader_change: Callable[[LeaderInfo | None], Any] | None = None,
        on_draining: Callable[[AsyncLeadership, float], Any] | None = None,
        metrics: MetricsRecorder | None = None,
        clock: Clock = monotonic_clock,
        auth: DigestAuth | Sequence[DigestAuth] | None = None,
        acl: ElectionAcl | None = None,
        tls: TlsOptions | None = None,
        sasl: SaslOptions | None = None,
    ) -> None:
        check_arguments(on_elected, on_revoked, on_leader_change, metrics, clock)
        self.election = Election(
            client_or_hosts,
            path,
            candidate_id=candidate_id,
            config=config,
            # Ours run on the loop (LoopSide), not on the election's callback thread.
            on_leader_change=None if on_leader_change is None else self._leader_changed,
            # Always: run_while_leader's work is drained before a switchover's delete.
            on_draining=self._draining,
            metrics=metrics,
            clock=clock,
            auth=auth,
            acl=acl,
            tls=tls,
            sasl=sasl,
        )
        self._on_elected, self._on_revoked = on_elected, on_revoked
        self._on_leader_change = on_leader_change
        if on_draining is not None and not callable(on_draining):
            raise ConfigurationError(f"on_draining must be callable, got {on_draining!r}")
        self._on_draining = on_draining
        self._callbacks = LoopCallbacks(self.election.path)
        self._side: LoopSide | None = None
        self._runner: WorkRunner | None = None
        self._stopped: asyncio.Future[None] | None = None

    # -- the same read-only properties as Election -------------------------------------------

    @property
    def path(self) -> str:
        return self.election.path

    @property
    def candidate_id(self) -> str:
        return self.election.candidate_id

    @property
    def config(self) -> ElectionConfig:
        return self.election.config

    @property
    def is_leader(self) -> bool:
        return self.election.is_leader

    @property
    def node(self) -> str | None:
        return self.election.node

    @property
    def lifecycle(self) -> Lifecycle:
        return self.election.lifecycle

    @property
    def session(self) -> Session:
        return self.election.session

    @property
    def acl_mismatch(self) -> str | None:
        return self.election.acl_mismatch

    @property
    def leading(self) -> AsyncLeadership | None:
        """Our leadership as the loop knows it (None while not leading)."""
        return None if self._side is None else self._side.leading

    # -- start, stop, resign ----------------------------------------------------------------------

    async def start(self, *, wait: bool = True) -> AsyncElection:
        """Join as a candidate; returns once the first attempt to join is answered, as
        ``Election.start()`` does (and as soon as the create is handed over where this
        session has proven that no answer can be a refusal: see ``Election.start``).

        Raises ConnectionFailedError / ChrootMissingError / PermissionDeniedError (nothing
        is left behind); a connection problem after that is retried. The create goes to the
        session's batcher, as ``Election.start(wait=False)``'s does, so many elections
        started together join in a pipelined burst, without a thread each.

        ``wait=False`` returns as soon as the session is acquired, as
        ``Election.start(wait=False)``: the loop is not woken for each election's first
        answer, and a terminal error surfaces from ``wait_for_leadership()``.
        """
        election, loop = self.election, asyncio.get_running_loop()
        side = LoopSide(
            loop,
            self.path,
            self.config.request_timeout,
            self._callbacks,
            self._on_elected,
            self._on_revoked,
        )
        election._standing.enter_started()
        self._side = election._standing.listener = side
        session = election.session
        try:
            if not session.acquire_if_running():
                await asyncio.to_thread(session.acquire)  # connects: may take a while
        except BaseException:
            election._standing.enter_closed()
            raise
        if election._acl is not None:
            await asyncio.to_thread(election._attach)  # reads the path's ACL
        else:
            election._attach()
        # The create is posted by whichever thread frees a join slot (join_slots.py), not
        # from the loop: a burst of starts then reaches the batcher as fast as slots free.
        proven = session.state is ConnectionState.CONNECTED and session.joins.proven(self.path)
        if not wait or proven:
            # As Election.start: asked not to wait, or no answer could be a refusal here
            # (JoinBatcher.proven): return at once; a terminal error surfaces from
            # wait_for_leadership(). The loop is not woken once per election for nothing.
            session.join_slots.when_free(lambda: election._post(Start(None, batched=True)))
            return self
        first: Future[None] = Future()
        session.join_slots.when_free(lambda: election._post(Start(first, batched=True)))
        try:
            await waited(first, self.config.request_timeout + self.config.connect_timeout)
        except ZkElectError:
            await self.stop()
            raise
        except asyncio.TimeoutError:
            pass  # still trying in the background
        except asyncio.CancelledError:
            await asyncio.shield(self.stop())  # a start cancelled leaves nothing behind
            raise
        return self

    async def stop(self, timeout: float | None = None) -> None:
        """Leave the election: the ``run_while_leader`` work is cancelled and drained
        first, then our node is deleted (``on_revoked('stopped')`` has run when this
        returns). Idempotent."""
        timeout = check_timeout("timeout", timeout)
        if self._stopped is not None:
            await asyncio.shield(self._stopped)
            return
        self._stopped = asyncio.get_running_loop().create_future()
        try:
            await self._leave(timeout)
        finally:
            resolve(self._stopped, None)

    async def _leave(self, timeout: float | None) -> None:
        election, runner = self.election, self._runner
        if runner is not None:
            await runner.quiesce("stop")
        done = election._begin_stop()
        if done is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await waited(done, self.config.request_timeout if timeout is None else timeout)
            await asyncio.to_thread(election._finish_stop)  # the last one stops threads
        election._standing.listener = None
        if self._side is not None:
            await asyncio.sleep(0)  # the flips handed over before the listener went
            self._side.close()
        await self._callbacks.flush()
        if runner is not None:
            resolve(runner.finished, None)

    async def resign(self, timeout: float | None = None) -> bool:
        """Give up leadership and stay a candidate, re-queued at the back; False at once if
        not leading. The ``run_while_leader`` work is cancelled and drained before our node
        is deleted, so no successor leads while it still runs."""
        timeout = check_timeout("timeout", timeout)
        self.election._require_started()
        if not self.election.is_leader:
            return False
        runner = self._runner
        if runner is None:
            return await self._resign_now(timeout)
        await runner.quiesce("resign")
        try:
            return await self._resign_now(timeout)
        finally:
            runner.resume(self.leading)

    async def request_switchover(
        self, to: str | None = None, timeout: float = 30.0
    ) -> SwitchoverResult:
        """``Election.request_switchover`` (docs/switchover.md), awaited: it runs in a worker
        thread, the loop free meanwhile."""
        return await asyncio.to_thread(self.election.request_switchover, to, timeout)

    def _draining(self, lead: Leadership, deadline: float) -> None:
        """Election's on_draining, on its callback thread: drain on the loop (the work
        first, then ours), waited for up to the deadline (the node goes after it)."""
        side = self._side
        if side is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._drain(deadline), side.loop)
        with contextlib.suppress(Exception):  # ours raised, or the deadline came: go on
            future.result(timeout=max(0.0, deadline - self.election._clock()))

    async def _drain(self, deadline: float) -> None:
        runner, leading = self._runner, self.leading
        if runner is not None:
            await runner.quiesce("switchover")
            runner.resume(None)  # no new term until the next election (this one is ending)
        callback = self._on_draining
        if callback is not None and leading is not None:
            outcome = callback(leading, deadline)
            if inspect.isawaitable(outcome):
                await outcome

    async def _resign_now(self, timeout: float | None = None) -> bool:
        done: Future[bool] = Future()
        self.election._post(Resign(done))
        return await waited(done, self.config.request_timeout if timeout is None else timeout)

    # -- leadership ------------------------------------------------------------------------------

    async def wait_for_leadership(self, timeout: float | None = None) -> AsyncLeadership | None:
        """Our leadership once elected; None after ``timeout``. Raises the election's
        failure, or ElectionStoppedError once it is stopped."""
        timeout = check_timeout("timeout", timeout)
        failure = self.election._standing.failure  # known here before the loop hears of it
        if failure is not None:
            raise failure
        self.election._require_started()  # never started, stopping or stopped: raises
        assert self._side is not None  # started
        return await self._side.wait(timeout)

    @contextlib.asynccontextmanager
    async def leadership(self, timeout: float | None = None) -> AsyncIterator[AsyncLeadership]:
        """Wait for leadership; give it up on exit (stop if this call started the
        election, else resign)."""
        check_timeout("timeout", timeout)
        started_here = self.lifecycle is Lifecycle.LATENT
        if started_here:
            await self.start()
        try:
            lead = await self.wait_for_leadership(timeout)
            if lead is None:
                raise ElectionTimeoutError(f"not elected leader of {self.path} within {timeout}s")
            yield lead
        finally:
            if started_here:
                await self.stop()
            elif self.lifecycle is Lifecycle.STARTED and self._stopped is None:
                await self.resign()

    async def run_while_leader(self, work: Work, *, grace: float = DEFAULT_GRACE) -> None:
        """Whenever this candidate leads, run ``work(lead)`` as a task; cancel it the
        moment leadership is lost (before anything else on the loop hears of it), await it
        up to ``grace`` seconds, and campaign on. Returns when the election is stopped;
        when the work ends on its own while leading, leadership is released (the election
        stopped) and its exception, if any, re-raised. See zkelect/aio/_work.py."""
        if not callable(work):
            raise ConfigurationError(f"work must be an async function of the leadership: {work!r}")
        grace = check_seconds("grace", grace)
        if self._runner is not None:
            raise ConfigurationError(f"run_while_leader already runs for {self.path}")
        if self.lifecycle is Lifecycle.LATENT:
            await self.start()
        self.election._require_started()
        assert self._side is not None
        runner = WorkRunner(
            asyncio.get_running_loop(), self.path, self.candidate_id, work, grace, self._resign_now
        )
        self._runner, side = runner, self._side
        side.gained, side.lost = runner.gained, runner.lost
        if side.leading is not None:
            runner.gained(side.leading)
        try:
            try:
                error = await asyncio.shield(runner.finished)
            except asyncio.CancelledError:
                await asyncio.shield(self.stop())  # cancelled from outside: leave, then say so
                raise
            await self.stop()  # the work ended while leading (or stop() ended it): release
        finally:
            side.gained = side.lost = None
            self._runner = None
        if error is not None:
            raise error

    # -- reading the election --------------------------------------------------------------------

    async def leader(self) -> LeaderInfo | None:
        """The current leader, read now from ZooKeeper (None if there is none)."""
        return await asyncio.to_thread(self.election.leader)

    async def candidates(self) -> list[LeaderInfo]:
        """Every contender, in election order (the leader first), read now."""
        return await asyncio.to_thread(self.election.candidates)

    async def observe(self) -> AsyncIterator[LeaderInfo | None]:
        """Yield the current leader (or None), then each change, until the election stops.
        Costs one watch on the current leader's node while anyone observes."""
        self.election._require_started()
        inbox = _LoopInbox(asyncio.get_running_loop())
        self.election._subscribe(inbox)
        try:
            while True:
                item = await inbox.queue.get()
                if item is END:
                    return
                yield item  # type: ignore[misc]
        finally:
            self.election._unsubscribe(inbox)

    def _leader_changed(self, info: LeaderInfo | None) -> None:
        """Election's on_leader_change, on its callback thread: to ours, on the loop."""
        side = self._side
        if side is not None:
            call_soon(side.loop, self._callbacks.post, self._on_leader_change, info)

    async def __aenter__(self) -> AsyncElection:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return repr(self.election).replace("<Election", "<AsyncElection", 1)


class _LoopInbox:
    """observe()'s inbox: each leader change handed over to the loop's queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[object] = asyncio.Queue()

    def put(self, item: object) -> None:
        call_soon(self.loop, self.queue.put_nowait, item)
