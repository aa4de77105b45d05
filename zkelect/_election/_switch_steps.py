"""Planned switchovers, the candidacy's side (R14; the request: switchover.py), mixed into
``Candidacy``: the leader takes a request, the deputy (the candidate just behind it) steps
back or says it is ready, the leader drains, then resigns; and a candidate with a priority
asks for leadership when it should have it.

Only two candidates hold a watch on the request, both an ``exists`` watch on its one path
(``RequestWatch``): the leader and its deputy. The deputy is the follower whose predecessor
is known to lead (``Watches.ahead_first``, R13): the target, once it is the deputy, leads on
the leader's deletion notice without a read. A candidate that steps back deletes its node
and re-joins at the back, as a follower; the candidate behind it becomes the deputy and acts
in turn, so candidates ahead of the target leave the way one by one, in order.

These steps run on the candidacy's actor, like every other; every write of the request is
version-checked, so two parties never both move it from one state.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from zkelect._election._leaving import Leaving
from zkelect._election._request_watch import RequestWatch
from zkelect._election._watching import Watches
from zkelect._election.messages import Drained, Message, ResignSent
from zkelect._election.nodes import election_order, node_priority
from zkelect._election.ports import SessionPort
from zkelect._election.standing import Standing
from zkelect._election.switchover import State, SwitchoverRequest, log_fields
from zkelect._logs import emit
from zkelect._zookeeper.outcomes import (
    BadVersion,
    ConnectionState,
    NodeExists,
    NodeStat,
    NoNode,
    Retryable,
    SessionGone,
)
from zkelect.clock import Clock
from zkelect.config import ElectionConfig
from zkelect.errors import ZkElectError
from zkelect.fencing.leadership import Leadership
from zkelect.metrics import MetricsRecorder

__all__ = ["RequestWatch", "SwitchSteps"]

log = logging.getLogger("zkelect")
_ZK_ERRORS = (NoNode, BadVersion, NodeExists, Retryable, SessionGone, ZkElectError)


@dataclass
class _Drain:
    request_id: str
    started: float
    lead: Leadership


class SwitchSteps(abc.ABC):
    """The switchover steps of the candidacy (fields declared here, set by ``Candidacy``)."""

    path: str
    node: str | None
    node_stat: NodeStat | None
    standing: Standing
    post: Callable[[Message], None]
    _session: SessionPort
    _config: ElectionConfig
    _clock: Clock
    _metrics: MetricsRecorder
    _leaving: Leaving
    _watches: Watches
    _request_watch: RequestWatch
    _steady_since: float | None
    _on_draining: Callable[[Leadership, float], None] | None

    def _init_switching(self) -> None:
        self._accepted: str | None = None  # the request we accepted, until drained or gone
        self._drain: _Drain | None = None
        self._led: Leadership | None = None  # the leadership _led_since is about
        self._led_since = 0.0
        self._steady_since: float | None = None  # connected without a break since then

    @abc.abstractmethod
    def _forget_node(self, *, marker: bool = True) -> None:
        """We have no node any more (candidacy.py)."""

    @abc.abstractmethod
    def _tidy_request(self) -> None:
        """Delete our own priority request once it is over (_priority_steps.py)."""

    @abc.abstractmethod
    def _resign(self, done: Future[bool], reason: str = "resigned") -> None:
        """Revoke and delete our node, then re-join (_leave_steps.py)."""

    # -- who watches ----------------------------------------------------------------------------

    def _watch_requests(self) -> None:
        """Hold the request's watch if we lead or are the deputy; drop it otherwise."""
        if self._role() is None:
            self._request_watch.drop()
        else:
            self._request_watch.hold()

    def _role(self) -> str | None:
        if self.node is None:
            return None
        lead = self.standing.leadership
        if lead is not None:
            if lead is not self._led:
                self._led, self._led_since = lead, self._clock()
            return "leader"
        watches = self._watches
        return "deputy" if watches.watched is not None and watches.ahead_first else None

    def _session_steady(self, state: ConnectionState) -> None:
        self._steady_since = self._clock() if state is ConnectionState.CONNECTED else None
        if state is ConnectionState.LOST:
            self._request_watch.lost()

    # -- a request seen -------------------------------------------------------------------------

    def _request_seen(self, generation: int) -> None:
        if generation != self._request_watch.generation:
            return  # a watch we moved on from (stale): nothing to read
        role = self._role()
        if role is None:
            self._request_watch.drop()
            return
        try:
            got = self._request_watch.read(generation)
            if got is None:
                self._request_gone()
                return
            request, version = got
            if request is None:
                return  # not a request we can read: ignored, never acted on
            if role == "leader":
                self._as_leader(request, version)
            else:
                self._as_deputy(request, version)
        except _ZK_ERRORS as exc:
            # A switchover is never worth the election: a request we may not read or move
            # (its ACL, R11), or ZooKeeper away, leaves the candidacy as it was.
            log.warning("zkelect %s: could not act on the switchover request: %r", self.path, exc)
            self._request_watch.held = False  # the next look holds the watch again

    def _request_gone(self) -> None:
        if self._accepted is not None and self._drain is None:
            log.info("zkelect %s: switchover request withdrawn before the drain", self.path)
            self._count("withdrawn")
        self._accepted = None

    def _as_leader(self, request: SwitchoverRequest, version: int) -> None:
        node = self.node
        if request.state is State.REQUESTED:
            refusal, retry_after = self._refusal(request)
            if refusal is not None:
                self._move(
                    request, version, State.REFUSED, refusal=refusal, retry_after=retry_after
                )
                self._count("refused")
                emit(
                    "switchover_refused",
                    "%s: refused %s: %s",
                    self.path,
                    request.describe(),
                    refusal,
                    **self._fields(request),
                )
                return
            if self._move(request, version, State.ACCEPTED, frm=node):
                self._accepted = request.id
                emit(
                    "switchover_accepted",
                    "%s: accepted %s",
                    self.path,
                    request.describe(),
                    **self._fields(request),
                )
        elif request.state is State.READY and request.frm == node and self._drain is None:
            self._begin_drain(request, version)
        elif request.to == node and request.frm != node and request.reason == "priority":
            self._tidy_request()  # we asked, and lead now: our request is done

    def _refusal(self, request: SwitchoverRequest) -> tuple[str | None, float | None]:
        """Why the leader will not take ``request`` (and, for priority, when to ask again)."""
        node = self.node
        assert node is not None
        if request.to == node:
            return "the target leads already", None
        names = [c.name for c in election_order(self._session.children(self.path))]
        if request.to not in names or names.index(request.to) <= names.index(node):
            return f"{request.to} is not a candidate behind the leader (any more)", None
        if request.reason != "priority":
            return None, None
        config, now = self._config, self._clock()
        if node_priority(request.to) <= node_priority(node):
            return "the target's priority is not higher than the leader's", None
        wait = config.priority_interval - (now - self._led_since)
        if wait > 0:
            return f"this leader was elected less than {config.priority_interval:g}s ago", wait
        steady = self._steady_since
        if steady is None or now - steady < config.priority_settle or not self._lease_ok():
            return "this leader's connection has not been steady", config.priority_settle
        return None, None

    def _lease_ok(self) -> bool:
        return self._session.lease_remaining() > 0

    def _as_deputy(self, request: SwitchoverRequest, version: int) -> None:
        """Just behind the leader: say we are ready if we are the target, else step back if
        the target is behind us."""
        if request.state is not State.ACCEPTED or request.frm != self._watches.watched:
            return
        node = self.node
        assert node is not None
        if request.to == node:
            if self._move(request, version, State.READY):
                emit(
                    "switchover_ready",
                    "%s: ready to take over: %s",
                    self.path,
                    request.describe(),
                    **self._fields(request),
                )
            return
        names = [c.name for c in election_order(self._session.children(self.path))]
        if request.to in names and node in names and names.index(request.to) > names.index(node):
            self._step_back(request)

    def _step_back(self, request: SwitchoverRequest) -> None:
        """Leave the way: delete our node and re-join at the back (resign's second half)."""
        node, stat = self.node, self.node_stat
        assert node is not None and stat is not None
        emit(
            "stepping_back",
            "%s: stepping back for %s",
            self.path,
            request.describe(),
            **self._fields(request),
        )
        self._forget_node()
        done: Future[bool] = Future()
        self.post(ResignSent(node, stat, self._leaving.send_delete(node), done))

    # -- the drain ------------------------------------------------------------------------------

    def _begin_drain(self, request: SwitchoverRequest, version: int) -> None:
        lead = self.standing.leadership
        timeout = self._config.drain_timeout
        if lead is None:
            return
        draining = self._move(request, version, State.DRAINING, deadline=time.time() + timeout)
        if not draining:
            return  # withdrawn at this very moment: nothing drained, we lead on
        deadline = self._clock() + timeout
        self._drain = _Drain(request.id, self._clock(), lead)
        emit(
            "draining",
            "%s: draining for %s, for at most %gs",
            self.path,
            request.describe(),
            timeout,
            **self._fields(request),
        )
        post, request_id = self.post, request.id
        timers, notifier = self._session.timers, self._session.notifier
        if timers is not None:
            timers.call_later(timeout, lambda: post(Drained(request_id, timed_out=True)))
        callback = self._on_draining
        if callback is None or notifier is None:
            post(Drained(request_id, timed_out=False))
            return

        def drain() -> None:
            try:
                callback(lead, deadline)
            except Exception:  # a user's callback: logged, the switchover goes on
                log.exception("zkelect %s: on_draining raised", self.path)
            finally:
                post(Drained(request_id, timed_out=False))

        notifier.post(drain)  # the callback thread: in order with on_elected/on_revoked

    def _drained(self, request_id: str, timed_out: bool) -> None:
        drain = self._drain
        if drain is None or drain.request_id != request_id:
            return  # the second of the callback's end and the deadline
        self._drain = self._accepted = None
        seconds = self._clock() - drain.started
        self._metrics_call("switchover_drained", seconds)
        level = logging.WARNING if timed_out else logging.INFO
        emit(
            "drained",
            "%s: drained in %.3fs%s",
            self.path,
            seconds,
            " (cut short at the deadline: on_draining had not returned)" if timed_out else "",
            level=level,
            election=self.path,
            candidate=self.standing.candidate_id,
            seconds=round(seconds, 3),
            cut_short=timed_out,
        )
        if self.standing.leadership is not drain.lead:
            log.warning("zkelect %s: leadership was lost during the drain", self.path)
            return
        self._count("handed_over")
        emit(
            "handed_over",
            "%s: handing over: deleting our node after the drain",
            self.path,
            **self._fields(None),
        )
        self._resign(Future(), reason="switchover")

    # -- small helpers --------------------------------------------------------------------------

    def _move(
        self, request: SwitchoverRequest, version: int, state: State, **changes: object
    ) -> bool:
        """Write ``request`` moved to ``state``, if nobody moved it first."""
        moved = request.moved(state, **changes)
        try:
            self._session.set_data(self._request_watch.path, moved.encode(), version)
        except (NoNode, BadVersion):
            return False
        return True

    def _count(self, result: str) -> None:
        self._metrics_call("switchover", result)

    def _metrics_call(self, name: str, value: object) -> None:
        # Optional methods: a recorder written before switchovers existed has neither.
        record = getattr(self._metrics, name, None)
        if record is not None:
            record(self.path, value)

    def _fields(self, request: SwitchoverRequest | None) -> dict[str, Any]:
        return log_fields(self.path, self.standing.candidate_id, self.node, request)
