"""The candidacy state machine: join, watch the predecessor, lead, resign, rejoin.

Its steps run on the election's actor, one message at a time (``handle``), so the fields
below need no lock. They read top to bottom:

1. join       ``_join``: create our EPHEMERAL_SEQUENTIAL node (``Joiner``, found again by its
              GUID if the answer was lost: R1), or adopt the node of a batched create.
2. reconcile  ``_reconcile_once``: read the children; if our node is gone, join again; if
              our own orphans are ahead of us, delete them.
3. wait/lead  not first: leave one watch on the immediate predecessor (R3) and wait for it
              to fire; first and ours (R2, R4): lead (``_lead``, after proving the session
              alive: R7), watch our own node, and leave our leader marker (R13).
              The predecessor's deletion notice alone elects us when it is known to have
              been first (``_predecessor_gone``, R13); otherwise the notice means: look again.
4. leave      ``_resign`` (delete our node, rejoin at the back) or ``_stop`` (delete, done);
              ``_fail`` on a terminal error (leave, so nobody waits behind us for ever):
              in _leave_steps.py, mixed in.
5. switch     a planned switchover (R14): the leader and its deputy watch the request; the
              deputy steps back or says it is ready, the leader drains, then resigns; a
              candidate with a priority asks for leadership: in _switch_steps.py and
              _priority_steps.py, mixed in.

A transient error anywhere schedules a retry on the session's timers (``_schedule_retry``).
Leadership itself flips only in ``Standing`` (standing.py), which other threads share.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future

from zkelect._election._backoff import Backoff
from zkelect._election._joining import FirstJoin, Joiner
from zkelect._election._leave_steps import LeaveSteps
from zkelect._election._leaving import Leaving
from zkelect._election._looking import Looks
from zkelect._election._marking import Marker
from zkelect._election._priority_steps import PrioritySteps
from zkelect._election._request_watch import RequestWatch
from zkelect._election._switch_steps import SwitchSteps
from zkelect._election._watching import Watches
from zkelect._election.messages import (
    PRIORITY_CHECK,
    REJOIN,
    RETRY,
    Drained,
    Joined,
    MarkerSeen,
    Message,
    ObserverFired,
    OwnNodeAnswered,
    Phase,
    PredecessorFired,
    PredecessorGone,
    PriorityCheck,
    Recheck,
    Rejoin,
    RequestSeen,
    Resign,
    ResignSent,
    Retry,
    SessionChanged,
    Start,
    Stop,
    Subscribe,
    assert_never,
)
from zkelect._election.observer import UNSET
from zkelect._election.ports import Children, ObserverPort, PendingPort, SessionPort, TicketPort
from zkelect._election.standing import Standing
from zkelect._logs import emit
from zkelect._zookeeper.outcomes import ConnectionState, NodeStat, NoNode, Retryable, SessionGone
from zkelect.clock import Clock
from zkelect.config import ElectionConfig
from zkelect.errors import PermissionDeniedError, ZkElectError
from zkelect.fencing.leadership import Leadership
from zkelect.metrics import MetricsRecorder

__all__ = ["Candidacy"]

log = logging.getLogger("zkelect")
_MAX_PASSES = 16  # re-reads in one step before backing off (a churning election)


class Candidacy(LeaveSteps, PrioritySteps, SwitchSteps):
    """One election's candidacy; ``handle`` is its actor's handler."""

    def __init__(
        self,
        session: SessionPort,
        path: str,
        data: bytes,
        *,
        config: ElectionConfig,
        clock: Clock,
        metrics: MetricsRecorder,
        standing: Standing,
        observer: ObserverPort,
        observing: bool,
        on_draining: Callable[[Leadership, float], None] | None = None,
    ) -> None:
        self.path = path
        self._session = session
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self.standing = standing
        self._observer = observer
        self._observing = observing
        self._joiner = Joiner(session, path, data, config.request_timeout, config.priority)
        self._watches = Watches(session, path)
        self._looks = Looks(session, path, metrics, self._watches)
        self._leaving = Leaving(session, path, config.request_timeout, clock)
        self._backoff = Backoff(session, config)
        self._marker = Marker(session, path)
        self._request_watch = RequestWatch(session, path)
        self._on_draining = on_draining
        self._init_switching()
        self._init_priority()
        # Our node elected at our join with nobody behind: it never gets a marker, even when
        # it leads again after a reconnection with others behind (a marker made then would
        # say it was elected then: zkelect status reads the marker's ctime as that time).
        self._unmarked: str | None = None
        self.post: Callable[[Message], None] = lambda message: None  # the actor's, at start
        self.run_here: Callable[[Message], None] = lambda message: None  # likewise
        # Owned by the actor (one step at a time): no lock needed.
        self.node: str | None = None  # our candidate node's name
        self.node_stat: NodeStat | None = None
        self._waiting_since = 0.0
        self._joins = 0  # nodes this candidacy has had: from the second on, it rejoined
        # Set after a revocation or a reconnect that kept our node: before leading again,
        # read the children after a sync (a lagging member must not show a stale queue) and
        # confirm the session with a round trip sent after deciding to lead (R7).
        self._recheck = False
        self._first_answer: Future[None] | None = None  # of a batched first join

    def attach(self, post: Callable[[Message], None], run_here: Callable[[Message], None]) -> None:
        """Start taking messages: ``post`` puts one in the actor's mailbox; ``run_here``
        handles one on the calling thread when the actor is idle (``Actor.run_here``)."""
        self.post = self._watches.post = self.standing.post = self._request_watch.post = post
        self.run_here = self._watches.run_here = run_here

    @property
    def phase(self) -> Phase:
        """Where the candidacy stands, from the one set of fields that decides it."""
        standing = self.standing
        if standing.closing or standing.failure is not None:
            return Phase.STOPPED
        if self.node is None:
            return Phase.CREATING if self._joiner.in_flight else Phase.NO_NODE
        return Phase.WAITING if standing.leadership is None else Phase.LEADING

    # -- the actor ------------------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        match message:
            case Stop(done):
                self._stop(done)
            case _ if self.phase is Phase.STOPPED:
                self._refuse(message)
            case PredecessorGone(generation):
                self._predecessor_gone(generation)
            case MarkerSeen(generation, owner, czxid):
                self._watches.marker_seen(generation, owner, czxid)
                self._watch_requests()  # our predecessor leads: we are its deputy
            case PredecessorFired(generation, children):
                if generation == self._watches.generation:
                    self._watches.watched = None
                    self._waiting_since = self._clock()
                    self._looks.prefetched = children
                    self._reconcile()
            case Start(first, joined, batched):
                self._waiting_since = self._steady_since = self._clock()
                self._schedule_priority_check()
                if joined is not None:
                    self._took_first(joined, first)
                elif batched:
                    self._send_join(first)
                else:
                    self._reconcile(first)
                self._observe()
            case Joined(guid, ticket, children):
                self._joined(guid, ticket, children)
            case Retry():
                self._backoff.pending = False
                self._reconcile()
            case Rejoin():
                self._reconcile()
            case Recheck():
                self._recheck = True
                self._reconcile()
            case OwnNodeAnswered(generation, answer):
                self._own_node_answered(generation, answer)
            case SessionChanged(state):
                self._session_changed(state)
            case Resign(done):
                self._resign(done)
            case ResignSent(node, stat, answer, done):
                self._resign_sent(node, stat, answer, done)
            case Subscribe(inbox):
                if self._observer.last is not UNSET:
                    inbox.put(self._observer.last)
                self._observing = True
                self._observe()
            case ObserverFired(generation):
                self._observer.on_fired(generation)
            case RequestSeen(generation):
                self._request_seen(generation)
            case Drained(request_id, timed_out):
                self._drained(request_id, timed_out)
            case PriorityCheck():
                self._priority_check()
            case _:
                assert_never(message)

    def _refuse(self, message: Message) -> None:
        """A message that arrives once stopping or failed: give back what it holds."""
        if isinstance(message, Start):
            if message.batched:
                self._session.join_slots.release()
            if message.first is not None:
                message.first.set_result(None)  # start() then sees the stop or the failure
        elif isinstance(message, Resign):
            message.done.set_result(False)
        elif isinstance(message, ResignSent):
            # Stopped with our node's delete in flight: stop() no longer knows the node,
            # so a delete that got no answer is left to the session (R11).
            with contextlib.suppress(ZkElectError):
                self._leaving.deleted(message.node, message.answer)
            if self._leaving.abandoned:
                self._leaving.abandon_all()
            message.done.set_result(True)

    # -- 1. join --------------------------------------------------------------------------------

    def join_first(self) -> FirstJoin:
        """start()'s first join, on the caller's thread; post its answer as ``Start``."""
        return self._joiner.first()

    def _join(self) -> None:
        """Create our node, finding it again if a previous create's reply was lost (R1)."""
        self._adopt(*self._joiner.create())

    def _took_first(self, attempt: FirstJoin, first: Future[None] | None) -> None:
        """The first join of a blocking start(), made on its caller's thread (join_first);
        ``first`` is answered once it is taken."""
        created = self._joiner.took_first(attempt)
        if created is not None:
            self._adopt(*created)
            self._looks.prefetched = attempt.children
        if attempt.error is None:
            self._reconcile(first)
            return
        if isinstance(attempt.error, ZkElectError):
            self._fail(attempt.error)  # terminal: start() raises it itself
        else:
            self._schedule_retry()  # lost or refused for now: found again by its GUID (R1)
        if first is not None:
            first.set_result(None)

    def _send_join(self, first: Future[None] | None) -> None:
        """A batched first join: hand the create to the session's batcher; its answer comes
        back as a ``Joined`` message with the children already known. ``first`` is answered
        once that answer is taken."""
        if self._session.state is not ConnectionState.CONNECTED or self.node is not None:
            self._session.join_slots.release()
            self._reconcile(first)  # nothing to pipeline; the usual path retries as needed
            return
        self._first_answer = first
        post = self.post
        self._joiner.send(lambda guid, ticket, children: post(Joined(guid, ticket, children)))

    def _joined(self, guid: str, ticket: TicketPort, children: Children) -> None:
        first, self._first_answer = self._first_answer, None
        if not self._joiner.owns(guid, ticket):
            # Already taken by another step, or reset by a lost session: the first attempt
            # is over, the candidacy goes on trying.
            if first is not None:
                first.set_result(None)
            return
        try:
            taken = self._joiner.take()
        except (Retryable, SessionGone, NoNode):
            self._schedule_retry()
            if first is not None:
                first.set_result(None)
            return
        except ZkElectError as exc:
            self._fail(exc)
            if first is not None:
                first.set_exception(exc)
            return
        if taken is not None:
            self._adopt(*taken)
        self._looks.prefetched = children
        self._reconcile(first)

    def _adopt(self, name: str, stat: NodeStat) -> None:
        self.node = name
        self.node_stat = stat
        self._joiner.settled()
        self._watches.watched = None
        self._waiting_since = self._clock()
        self._joins += 1
        if self._joins > 1:  # after a lost session, a deleted node, a resignation
            emit(
                "rejoined",
                "rejoined %s as %s/%s (session %#x)",
                self.path,
                self.path,
                name,
                stat.ephemeral_owner,
                election=self.path,
                candidate=self.standing.candidate_id,
                node=f"{self.path}/{name}",
                session=stat.ephemeral_owner,
            )

    def _forget_node(self, *, marker: bool = True) -> None:
        self.node = None
        self.node_stat = None
        self._watches.forget()
        self._request_watch.drop()
        if marker:
            self._marker.remove()

    # -- 2. reconcile ---------------------------------------------------------------------------

    def _reconcile(self, first: Future[None] | None = None) -> None:
        """Bring our candidacy in line with ZooKeeper; schedule a retry on failure."""
        try:
            if self._session.state is ConnectionState.CONNECTED:
                self._reconcile_once()
                self._backoff.succeeded()
        except (Retryable, SessionGone) as exc:
            log.debug("zkelect %s: will retry after %r", self.path, exc)
            self._schedule_retry()
        except ZkElectError as exc:  # terminal: permission denied, bad arguments
            self._fail(exc)
            if first is not None:
                first.set_exception(exc)
                return
        if first is not None:
            first.set_result(None)

    def _reconcile_once(self) -> None:
        self._leaving.delete_abandoned()
        for _ in range(_MAX_PASSES):
            if self.node is None:
                self._join()
            order = self._looks.order(self._recheck)
            names = [node.name for node in order]
            if self.node not in names:
                self.standing.revoke("node_deleted")
                self._forget_node()
                continue
            index = names.index(self.node)
            orphans = Joiner.orphans(self.node, order[:index])
            if orphans:
                # Nodes of our own create attempt ahead of us (a create whose reply was lost,
                # missed by a look at a lagging member, then made again): never wait on them.
                log.warning("zkelect %s: deleting our own orphan node(s) %s", self.path, orphans)
                self._leaving.abandoned.extend(orphans)
                self._leaving.delete_abandoned()
                continue
            if index == 0:
                stat = self.node_stat
                if stat is None or stat.ephemeral_owner != self._session.session_id:
                    self.standing.revoke("session_changed")  # R2: not our node now
                    self._forget_node()
                    continue
                self._lead(alone=len(order) == 1)
                return
            # Known first (R13) only from a look whose order needed no wrap arithmetic.
            first = index == 1 and order[0].sequence >= 0 and order[1].sequence >= 0
            if not self._watches.on_predecessor(names[index - 1], first=first):
                continue  # the predecessor left meanwhile, or is foreign: read again (R3)
            # After the watch: a leader is not revoked for a foreign node ahead of it (a
            # real candidate can never be created ahead of the leader: sequences only grow).
            self.standing.revoke("not_first")
            self._recheck = False
            self._watch_requests()  # the deputy's, if our predecessor is known to lead
            return
        self._schedule_retry()

    # -- 3. lead --------------------------------------------------------------------------------

    def _lead(self, alone: bool = False) -> None:
        """Our node is first and ours: lead, once the session is proven alive (R7).

        ``alone``: the look showed nobody behind us. Then the next in line needs no marker
        (R13): it joins after that look, so its own look shows us first. We still leave one
        unless we were elected at our join (``_elected_at_join``): the marker's ctime is
        the one trace of when we were elected (``zkelect status``). That first decision
        holds for the node: a node elected at its join never gets a marker."""
        if self._recheck:
            # After a revocation or a reconnect: a round trip through the ZooKeeper leader
            # sent after deciding, so a session the servers are expiring is not led on.
            self._session.sync()
        if self._session.lease_remaining() <= 0:
            # Not proven (yet): a client connected before we saw it, a lease that ran out,
            # a create found again by reads. The heartbeat proves it soon (zkelect/_lease.py).
            post = self.post
            self._session.when_lease_valid(self.standing.key, lambda: post(REJOIN))
            return
        self._recheck = False
        node, stat = self.node, self.node_stat
        assert node is not None and stat is not None  # first and ours: _reconcile_once
        if alone and node != self._unmarked and self._elected_at_join(stat):
            self._unmarked = node
        self._grant(node, stat, announce=node != self._unmarked)

    def _elected_at_join(self, stat: NodeStat) -> bool:
        """Whether the look that elects us shows the path as our create left it (its pzxid,
        the last child created or deleted, is our node's czxid): nobody was ahead of us when
        we joined, so our node's ctime is when we were elected. Otherwise a predecessor left
        after we joined (or anyone came and went): we waited, and our marker records when we
        were elected."""
        return self._looks.zxid == stat.czxid

    def _grant(
        self, node: str, stat: NodeStat, known_first: int = 0, announce: bool = True
    ) -> None:
        zxid = max(self._looks.zxid, known_first)  # a state in which we were first, or next
        self.standing.grant(node, stat, zxid, self._waiting_since)
        self._watches.on_own_node(node)
        if announce and self.standing.leadership is not None:
            self._marker.leave(node)
        self._watch_requests()  # after the handover's own requests

    def _predecessor_gone(self, generation: int) -> None:
        """Our predecessor's node was deleted. If it was first (a look showed it, or its
        leader marker is ours to trust), nothing can be ahead of us now: lead on the notice,
        with the same checks as after a look (R2, R7), read nothing (R13). Otherwise, or if
        a check does not hold, look again; this step may run on kazoo's callback thread
        (``Actor.run_here``), so the look is a step of its own on the pool."""
        watches = self._watches
        if generation != watches.generation:
            return
        node, stat, session = self.node, self.node_stat, self._session
        if (
            watches.ahead_first
            and not self._recheck
            and node is not None
            and stat is not None
            and self.standing.leadership is None
            and session.state is ConnectionState.CONNECTED
            and stat.ephemeral_owner == session.session_id
            and session.lease_remaining() > 0
        ):
            known_first = watches.first_zxid
            watches.watched = None
            log.debug("zkelect %s: predecessor gone, it was first: leading", self.path)
            self._grant(node, stat, known_first)
            return
        self.post(PredecessorFired(generation, session.send_listing(self.path)))

    def _own_node_answered(self, generation: int, answer: PendingPort) -> None:
        """The leader's watch on its own node could not be set: gone, or not readable."""
        if generation != self._watches.generation:
            return
        try:
            try:
                answer.result()
            except PermissionDeniedError:  # not even our own node readable: see Watches.stat
                node = f"{self.path}/{self.node or ''}"
                fired = self._watches.fired(generation)
                if self._watches.stat(node, generation, lambda _event: fired()) is None:
                    raise NoNode(node) from None
        except NoNode:
            self.standing.revoke("node_deleted")
            self._forget_node()
            self._reconcile()
        except (Retryable, SessionGone):
            self._watches.watched = None  # set it again on the next look
            self._schedule_retry()
        except ZkElectError as exc:
            self._fail(exc)

    # -- 4. leave: _resign, _stop, _fail (_leave_steps.py) --------------------------------------

    # -- the session, the retries, the observer ------------------------------------------------

    def _session_changed(self, state: ConnectionState) -> None:
        self._looks.prefetched = None
        self._session_steady(state)
        if state is ConnectionState.LOST:
            if self._joined_anew():
                return  # a step ran on the new session first: what it made is ours (R2)
            # The old session's nodes are not ours any more, even while still visible (R2).
            self.node = None
            self.node_stat = None
            self._marker.lost()
            if self._session.state is not ConnectionState.CONNECTED:
                self._joiner.reset()
            # else a new session is already up, and an open create attempt may have been
            # sent on it: keep it, it is found again only if the new session owns it (R1, R2).
            self._leaving.abandoned.clear()
            self._watches.forget()
            self._observer.invalidate()
        elif state is ConnectionState.CONNECTED:
            # Same session: kazoo re-registers our watch with the server (which fires it
            # if the node changed meanwhile), so keep it; but read the children again,
            # after a sync: the member we reconnected to may lag behind (R7).
            self._recheck = True
            self._marker.unsure()  # a marker sent before the drop may be lost: leave it again
            self._reconcile()
            self._observe()

    def _joined_anew(self) -> bool:
        """Whether a step queued before the loss was told of already ran on the next
        session and joined with it: the node is owned by the session we have now. Its node
        must not be forgotten (no one else would ever delete it, and we would wait behind it)."""
        stat, session = self.node_stat, self._session
        return (
            stat is not None
            and session.state is ConnectionState.CONNECTED
            and stat.ephemeral_owner == session.session_id
        )

    def _schedule_priority_check(self) -> None:
        """A candidate with a priority looks, ``priority_settle`` seconds from now and then
        every as long, whether it should lead (``_priority_check``)."""
        timers, post = self._session.timers, self.post
        if self._config.priority != 0 and timers is not None:
            delay = max(self._config.priority_settle, 0.5)
            timers.call_later(delay, lambda: post(PRIORITY_CHECK))

    def _schedule_retry(self) -> None:
        post = self.post
        self._backoff.schedule(lambda: post(RETRY))

    def _observe(self) -> None:
        if self._observing:
            self._observer.refresh()
