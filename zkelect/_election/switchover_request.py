"""Asking for a planned switchover and following it to its end: the requester's side
(``Election.request_switchover``, ``zkelect switchover``). The protocol: switchover.py.

1. read     the election: who leads, and which candidate ``to`` names (the next in line when
            None); refuse before writing anything if there is nothing to switch;
2. ask      create the request, ephemeral (a second one at once is a NodeExists);
3. follow   watch the request, the leader's node and the target's node until the target's
            node is first (done), the request is refused, someone else leads, or the time
            is up, each told by its own error;
4. tidy     delete our request, whatever happened (if we die, the session does).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from zkelect._election.nodes import Contender, LeaderInfo, election_order, leader_marker
from zkelect._election.reader import Reads, read_election
from zkelect._election.switchover import REQUEST_NODE, State, SwitchoverRequest
from zkelect._logs import emit
from zkelect._zookeeper.outcomes import BadVersion, NodeExists, NoNode, Retryable, SessionGone
from zkelect.clock import Clock, monotonic_clock
from zkelect.config import check_seconds
from zkelect.errors import (
    LeaderNotAnsweringError,
    SwitchoverError,
    SwitchoverInProgressError,
    SwitchoverInterruptedError,
    SwitchoverRefusedError,
    TargetNotReadyError,
    UnknownCandidateError,
)

__all__ = ["RequestSession", "SwitchoverResult", "request_switchover"]

log = logging.getLogger("zkelect")

#: The longest wait between two reads while following (watches wake us sooner).
_POLL = 0.5
#: How long the target's leader marker is waited for, at least, once its node is first.
_CONFIRM = 2.0
#: Deletes of our request tried before leaving it to our session's end.
_WITHDRAW_TRIES = 5


class RequestSession(Reads, Protocol):
    """What the requester needs of a session (``zkelect._zookeeper.session.Session``)."""

    def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> str: ...

    def delete(self, path: str, version: int = -1) -> None: ...

    def sync(self, path: str = "/") -> None: ...


@dataclass(frozen=True)
class SwitchoverResult:
    """A switchover that happened: ``leader`` leads now (with a higher epoch than
    ``previous``). ``seconds``: from the request to the target's node first, as the requester
    saw it; ``drain_seconds``: from ``draining`` to the old leader's node gone (None if the
    old leader left without draining)."""

    leader: LeaderInfo
    previous: LeaderInfo
    seconds: float
    drain_seconds: float | None


def request_switchover(
    session: RequestSession,
    path: str,
    *,
    to: str | None,
    timeout: float,
    by: str,
    on_step: Callable[[SwitchoverRequest], None] | None = None,
    clock: Clock = monotonic_clock,
) -> SwitchoverResult:
    """Hand leadership of ``path`` to ``to`` (a candidate id or a node name; None: the next
    in line), its leader drained first; see the module docstring. Blocks; raises one of
    the ``SwitchoverError`` kinds, with nothing left behind."""
    timeout = check_seconds("timeout", timeout)
    if to is not None and not to:
        raise UnknownCandidateError("the target must be a candidate id or a node name, not ''")
    started = clock()
    session.sync(path)  # a member behind the others must not hide a candidate that joined
    snapshot = read_election(session, path, order=election_order)
    leader, target = _leader_and_target(path, list(snapshot.contenders), to)
    request = SwitchoverRequest.new(
        to=target.name,
        to_id=target.candidate_id,
        frm=leader.name,
        reason="operator",
        by=by,
        now=time.time(),
        timeout=timeout,
    )
    request_path = f"{path}/{REQUEST_NODE}"
    try:
        session.create(request_path, request.encode(), ephemeral=True)
    except NodeExists:
        raise SwitchoverInProgressError(_pending(session, request_path)) from None
    emit("switchover_requested", "%s: %s", path, request.describe(), election=path)
    try:
        if on_step is not None:
            on_step(request)  # the first state the requester sees is the one it wrote
        follower = _Follower(session, path, request, leader, target, clock, on_step)
        result = follower.follow(started + timeout)
    except SwitchoverError as exc:
        emit("switchover_failed", "%s: switchover failed: %s", path, exc, election=path)
        raise
    finally:
        _withdraw(session, request_path, request.id)
    emit(
        "switchover_done",
        "%s: %s leads (node %s, epoch %#x) after %.3fs",
        path,
        result.leader.candidate_id,
        result.leader.node,
        result.leader.epoch,
        result.seconds,
        election=path,
        target=f"{path}/{result.leader.node}",
        seconds=round(result.seconds, 3),
    )
    return result


def _leader_and_target(
    path: str, contenders: list[Contender], to: str | None
) -> tuple[Contender, Contender]:
    if not contenders:
        raise SwitchoverRefusedError(f"{path} has no candidate: there is nothing to switch")
    leader = contenders[0]
    if to is None:
        if len(contenders) < 2:
            raise SwitchoverRefusedError(
                f"{path} has no candidate besides its leader {leader.candidate_id!r}: "
                "start another candidate first"
            )
        return leader, contenders[1]
    named = [c for c in contenders if c.name == to] or [
        c for c in contenders if c.candidate_id == to
    ]
    if not named:
        known = ", ".join(f"{c.candidate_id!r} ({c.name})" for c in contenders)
        raise UnknownCandidateError(f"{to!r} is no candidate of {path}; the candidates: {known}")
    if len(named) > 1:
        nodes = ", ".join(c.name for c in named)
        raise UnknownCandidateError(
            f"{to!r} names {len(named)} candidates of {path} ({nodes}): name one by its node"
        )
    if named[0].name == leader.name:
        raise SwitchoverRefusedError(f"{to!r} leads {path} already: there is nothing to switch")
    return leader, named[0]


class _Follower:
    """Step 3: one read of the request and both nodes per wake, until an outcome."""

    def __init__(
        self,
        session: RequestSession,
        path: str,
        request: SwitchoverRequest,
        leader: Contender,
        target: Contender,
        clock: Clock,
        on_step: Callable[[SwitchoverRequest], None] | None,
    ) -> None:
        self._session = session
        self._path = path
        self._request = request
        self._leader = leader
        self._target = target
        self._clock = clock
        self._on_step = on_step
        self._woken = threading.Event()
        self._started = clock()
        self._state = State.REQUESTED
        self._drain_started: float | None = None
        self._target_left = False

    def follow(self, deadline: float) -> SwitchoverResult:
        while True:
            self._woken.clear()
            request = self._read_request()
            leader_there = self._exists(self._leader.name)
            target_there = self._exists(self._target.name)
            if not leader_there:
                return self._leader_gone(deadline)
            if not target_there:
                self._target_left = True
                if request is None or request.state is not State.DRAINING:
                    raise self._interrupted(f"the target {self._who(self._target)} left")
                # The leader is committed: it deletes its node after the drain. Who leads
                # then is the news worth telling, not who still drains now.
            if request is None:
                raise self._interrupted("the request was deleted by someone else")
            if request.state is State.REFUSED:
                raise SwitchoverRefusedError(
                    f"the leader refused: {request.refusal}", refusal=request.refusal or ""
                )
            remaining = deadline - self._clock()
            if request.state is State.DRAINING and request.deadline is not None:
                # The drain has its own bound: wait for it, and for the delete after it.
                remaining = max(remaining, request.deadline - time.time() + 2 * _POLL)
            if remaining <= 0:
                raise self._timed_out(request.state)
            self._woken.wait(min(remaining, _POLL))

    def _wake(self, *_args: object) -> None:
        self._woken.set()

    def _read_request(self) -> SwitchoverRequest | None:
        try:
            data, _stat = self._session.get(f"{self._path}/{REQUEST_NODE}", watch=self._wake)
        except NoNode:
            return None
        request = SwitchoverRequest.decode(data)
        if request is None or request.id != self._request.id:
            return None
        if request.state is not self._state:
            self._state = request.state
            if request.state is State.DRAINING:
                self._drain_started = self._clock()
            if self._on_step is not None:
                self._on_step(request)
        return request

    def _exists(self, name: str) -> bool:
        return self._session.exists(f"{self._path}/{name}", watch=self._wake) is not None

    def _leader_gone(self, deadline: float) -> SwitchoverResult:
        """The leader's node went: done if the target's node is first now, and the target
        says it leads (its leader marker, R13)."""
        now = self._clock()
        snapshot = read_election(self._session, self._path, order=election_order)
        first = snapshot.leader
        if first is None or first.name != self._target.name:
            who = f"the target {self._who(self._target)}" if self._target_left else "the leader"
            raise self._interrupted(f"{who} left", first, read=False)
        self._confirmed(max(deadline, now + _CONFIRM))
        drained = None if self._drain_started is None else now - self._drain_started
        return SwitchoverResult(
            LeaderInfo.of(first), LeaderInfo.of(self._leader), now - self._started, drained
        )

    def _confirmed(self, until: float) -> None:
        """Wait for the target's leader marker: its node first proves ZooKeeper's view, the
        marker that the target itself is alive and leads (a target that died during the
        drain keeps its node until its session expires). A target that leaves meanwhile
        is an interruption; no marker in time (it may not create one: its ACL) is logged."""
        marker = leader_marker(self._target.name)
        if marker is None:
            return
        while True:
            self._woken.clear()
            if self._exists(marker):
                return
            if not self._exists(self._target.name):
                raise self._interrupted(f"the target {self._who(self._target)} left")
            remaining = until - self._clock()
            if remaining <= 0:
                log.warning(
                    "zkelect %s: the target %s is first but left no leader marker: it may "
                    "not be running",
                    self._path,
                    self._who(self._target),
                )
                return
            self._woken.wait(min(remaining, _POLL))

    def _interrupted(
        self, what: str, now: Contender | None = None, *, read: bool = True
    ) -> SwitchoverInterruptedError:
        if read:
            with contextlib.suppress(Retryable, SessionGone):
                now = read_election(self._session, self._path, order=election_order).leader
        who = "nobody leads now" if now is None else f"{self._who(now)} leads now"
        return SwitchoverInterruptedError(
            f"{what} during the switchover: {who}",
            leader=None if now is None else LeaderInfo.of(now),
        )

    def _timed_out(self, state: State) -> SwitchoverError:
        timeout, leader = self._request.timeout, self._who(self._leader)
        if state is State.REQUESTED:
            return LeaderNotAnsweringError(
                f"the leader {leader} did not answer within {timeout:g}s (frozen, partitioned, "
                "or a candidate that knows no switchover, like a Curator LeaderLatch): nothing "
                "changed; `zkelect switchover --force` deletes its node undrained"
            )
        if state is State.ACCEPTED:
            return TargetNotReadyError(
                f"the target {self._who(self._target)} did not become ready behind the leader "
                f"within {timeout:g}s: its session is not connected, it is frozen, it cannot "
                "say it is ready (a Curator LeaderLatch), or a candidate ahead of it cannot "
                "step back (a Curator LeaderLatch, an older zkelect); the leader was not "
                "drained and still leads"
            )
        return LeaderNotAnsweringError(
            f"the leader {leader} did not finish the switchover ({state.value}) within {timeout:g}s"
        )

    @staticmethod
    def _who(contender: Contender) -> str:
        return f"{contender.candidate_id!r} ({contender.name})"


def _pending(session: RequestSession, request_path: str) -> str:
    try:
        data, _stat = session.get(request_path)
    except NoNode:
        return "another switchover was pending a moment ago; try again"
    request = SwitchoverRequest.decode(data)
    what = "a request zkelect cannot read" if request is None else request.describe()
    return f"another switchover is pending ({what}): wait for it to end, then try again"


def _withdraw(session: RequestSession, request_path: str, request_id: str) -> None:
    """Delete our request (only ours: checked by its id and version; read again when a
    candidate moved it between our read and our delete)."""
    for _ in range(_WITHDRAW_TRIES):
        with contextlib.suppress(NoNode, Retryable, SessionGone):
            data, stat = session.get(request_path)
            request = SwitchoverRequest.decode(data)
            if request is None or request.id != request_id:
                return
            try:
                session.delete(request_path, stat.version)
            except BadVersion:
                continue
        return
