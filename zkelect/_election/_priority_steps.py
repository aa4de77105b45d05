"""Leadership by priority, the candidacy's side, mixed into ``Candidacy``: a candidate with a
priority asks for a switchover to itself when it should lead, and tidies its request away.

A candidate's priority is in its node's name (nodes.new_node_prefix), so one look at the
children tells everyone's. Every ``priority_settle`` seconds a candidate with a priority
looks; it asks (a request with reason ``priority``, through the same drained switchover as
an operator's, R14) only when it is the best candidate (highest priority, earliest of
equals), higher than the leader, and connected for ``priority_settle`` seconds. The leader
keeps the flap guard (``_switch_steps.SwitchSteps._refusal``): no hand-over on priority
within ``priority_interval`` of its own election, nor while its own connection is not steady.
So a rolling upgrade that gives new versions a higher priority ends with one switchover: the
first new candidate to settle asks; later ones see a leader as high as themselves.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable

from zkelect._election._request_watch import RequestWatch
from zkelect._election.messages import Message
from zkelect._election.nodes import election_order, node_priority
from zkelect._election.ports import SessionPort
from zkelect._election.standing import Standing
from zkelect._election.switchover import REQUEST_NODE, State, SwitchoverRequest, log_fields
from zkelect._logs import emit
from zkelect._zookeeper.outcomes import BadVersion, NodeExists, NoNode, Retryable, SessionGone
from zkelect.clock import Clock
from zkelect.config import ElectionConfig
from zkelect.errors import ZkElectError

__all__ = ["PrioritySteps"]

log = logging.getLogger("zkelect")
_ZK_ERRORS = (NoNode, BadVersion, NodeExists, Retryable, SessionGone, ZkElectError)
#: How long a priority request may wait for its switchover before its maker withdraws it.
_PRIORITY_REQUEST_TIMEOUT = 60.0


class PrioritySteps(abc.ABC):
    """The priority steps of the candidacy (fields declared here, set by ``Candidacy``)."""

    path: str
    node: str | None
    standing: Standing
    post: Callable[[Message], None]
    _session: SessionPort
    _config: ElectionConfig
    _clock: Clock
    _request_watch: RequestWatch
    _steady_since: float | None

    def _init_priority(self) -> None:
        self._my_request: str | None = None  # the priority request we made, until tidied
        self._not_before = 0.0  # no priority request before then (refused: retry_after)

    @abc.abstractmethod
    def _schedule_priority_check(self) -> None:
        """The next ``_priority_check`` (candidacy.py)."""

    def _priority_check(self) -> None:
        """Every ``priority_settle`` seconds, for a candidate with a priority: tidy our own
        request away once it is settled, and ask for leadership when we should have it: the
        best candidate (highest priority, earliest of equals), higher than the leader, and
        connected for ``priority_settle`` seconds (never during a faulty period)."""
        self._schedule_priority_check()
        try:
            self._tidy_or_ask()
        except _ZK_ERRORS as exc:
            log.debug("zkelect %s: priority check: %r", self.path, exc)

    def _tidy_or_ask(self) -> None:
        children = self._session.children(self.path)
        if REQUEST_NODE in children:
            self._tidy_request(children)
            return
        self._my_request = None
        node, now, steady = self.node, self._clock(), self._steady_since
        if node is None or self.standing.leadership is not None or now < self._not_before:
            return
        if steady is None or now - steady < self._config.priority_settle:
            return
        order = election_order(children)
        if not order or node not in (c.name for c in order):
            return
        leader = order[0]
        best = max(order, key=lambda c: node_priority(c.name))  # max keeps the earliest
        if best.name != node or node_priority(node) <= node_priority(leader.name):
            return
        request = SwitchoverRequest.new(
            to=node,
            to_id=self.standing.candidate_id,
            frm=leader.name,
            reason="priority",
            by=f"candidate {self.standing.candidate_id} (priority {self._config.priority})",
            now=time.time(),
            timeout=_PRIORITY_REQUEST_TIMEOUT,
        )
        self._session.create(self._request_watch.path, request.encode(), ephemeral=True)
        self._my_request = request.id
        emit(
            "switchover_requested",
            "%s: asking for leadership by priority: %s",
            self.path,
            request.describe(),
            **log_fields(self.path, self.standing.candidate_id, self.node, request),
        )

    def _tidy_request(self, children: list[str] | None = None) -> None:
        """Delete our own priority request once it is over: refused (ask again after its
        retry_after), done (we lead), or stale: too old, or taken by a leader that has left
        since (``children``, when known, tells)."""
        if self._my_request is None:
            return
        data, stat = self._session.get(self._request_watch.path)
        request = SwitchoverRequest.decode(data)
        if request is None or request.id != self._my_request:
            self._my_request = None
            return
        leading = self.standing.leadership is not None
        stale = time.time() - request.requested_at > request.timeout or (
            children is not None
            and request.state is not State.REQUESTED
            and request.frm not in children
        )
        if request.state is State.REFUSED or leading or stale:
            if request.state is State.REFUSED:
                self._not_before = self._clock() + (request.retry_after or 0.0)
            self._session.delete(self._request_watch.path, stat.version)
            self._my_request = None
