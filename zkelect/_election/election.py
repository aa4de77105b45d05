"""The Election: a small facade over the candidacy state machine (candidacy.py).

What it guarantees
------------------
* At most one candidate *per ZooKeeper's view* leads a path: the one whose
  EPHEMERAL_SEQUENTIAL node is first in order (R4), owned by its current session (R2).
* Each candidate holds exactly one watch on a candidate node: a follower on its
  immediate predecessor (R3), the leader on its own node (so a forced resign is seen at
  once); the leader and the next in line also watch for a switchover request (R14).
  Nobody watches the children list, so a leader change wakes one candidate, not all.
* ``Leadership.lost`` is set as soon as this process stops leading: its node went
  away, the connection was suspended (default policy), the session was lost, or the
  local lease ran out (R6, R7).

What it does not guarantee
--------------------------
Leadership is advisory. A process paused longer than its session timeout wakes up
believing it leads until it notices otherwise. Anything that matters must be fenced
with the epoch where the write lands (``Leadership.transaction()``, fencing/leadership.py).

Threads
-------
Election steps run on the session's small worker pool, one step at a time per
election (an actor, see _dispatch.py): ``Candidacy.handle`` takes the messages of
messages.py. ``on_elected``/``on_revoked``/``on_leader_change`` run on the session's
callback thread, in order; they must not block for long. Losing leadership (setting
``lost``) never waits for a callback or a pool thread (standing.py).

The Election itself holds the lifecycle (start, stop), the public methods, and the
readers of the election; everything a step does is the candidacy's.
"""

from __future__ import annotations

import contextlib
import logging
import queue
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, overload

from zkelect._dispatch import Actor
from zkelect._election._setup import check_arguments, check_path_acl, checked_config, open_session
from zkelect._election.candidacy import Candidacy
from zkelect._election.messages import (
    Inbox,
    Lifecycle,
    Message,
    ObserverFired,
    Resign,
    Start,
    Stop,
    Subscribe,
)
from zkelect._election.nodes import LeaderInfo, election_order
from zkelect._election.observer import LeaderObserver
from zkelect._election.reader import read_election, read_leader
from zkelect._election.standing import Standing
from zkelect._election.switchover_request import SwitchoverResult, request_switchover
from zkelect._zookeeper.outcomes import ConnectionState, Retryable, SessionGone
from zkelect._zookeeper.session import Session
from zkelect.clock import Clock, monotonic_clock
from zkelect.config import (
    ElectionConfig,
    SuspendedPolicy,
    check_timeout,
    default_candidate_id,
    validate_candidate_id,
    validate_path,
)
from zkelect.errors import (
    ConfigurationError,
    ConnectionFailedError,
    ElectionStoppedError,
    ElectionTimeoutError,
    ZkElectError,
)
from zkelect.fencing.leadership import Leadership
from zkelect.metrics import MetricsRecorder, NoopRecorder
from zkelect.security import (
    DigestAuth,
    ElectionAcl,
    SaslOptions,
    TlsOptions,
)

__all__ = ["END", "Election", "Lifecycle"]

log = logging.getLogger("zkelect")

#: What observe()'s inboxes get last, when the election stops.
END = object()


class Election:
    """Leader election on one ZooKeeper path. See the module docstring for guarantees.

    ``client_or_hosts`` is a KazooClient (shared: many elections may use one session;
    zkelect never starts or stops it) or a connect string (the election owns a client).

    Callbacks run on zkelect's callback thread, never on kazoo's, in this order per
    election: ``on_elected(leadership)`` then ``on_revoked(reason)`` before any new
    ``on_elected``. ``on_leader_change(info | None)`` (opt-in: it costs one more watch,
    on the current leader's node) reports every leader change, including others'.
    """

    def __init__(
        self,
        client_or_hosts: Any,
        path: str,
        *,
        candidate_id: str | None = None,
        config: ElectionConfig | None = None,
        on_elected: Callable[[Leadership], None] | None = None,
        on_revoked: Callable[[str], None] | None = None,
        on_leader_change: Callable[[LeaderInfo | None], None] | None = None,
        on_draining: Callable[[Leadership, float], None] | None = None,
        metrics: MetricsRecorder | None = None,
        clock: Clock = monotonic_clock,
        auth: DigestAuth | Sequence[DigestAuth] | None = None,
        acl: ElectionAcl | None = None,
        tls: TlsOptions | None = None,
        sasl: SaslOptions | None = None,
    ) -> None:
        self.path = validate_path(path)
        self.candidate_id = default_candidate_id() if candidate_id is None else candidate_id
        data = validate_candidate_id(self.candidate_id)
        self.config = checked_config(config)
        check_arguments(on_elected, on_revoked, on_leader_change, metrics, clock)
        if on_draining is not None and not callable(on_draining):
            raise ConfigurationError(f"on_draining must be callable, got {on_draining!r}")
        self._on_leader_change = on_leader_change
        self._metrics: MetricsRecorder = metrics or NoopRecorder()
        self._session, self._acl = open_session(
            client_or_hosts, self.config, clock, auth, acl, tls, sasl
        )
        #: Set at start() when an ElectionAcl was given and the existing election path has
        #: another ACL (left as it is): what differs. None otherwise.
        self.acl_mismatch: str | None = None
        self._subscribers: list[Inbox] = []  # guarded by _cond
        self._clock = clock
        self._leader_seen: tuple[LeaderInfo | None, float] | None = None  # see leader_seen()
        self._candidacy = self._candidacy_of(data, clock, on_elected, on_revoked, on_draining)
        self._standing = self._candidacy.standing
        self._cond = self._standing.cond  # guards the standing's fields and _subscribers

    def _candidacy_of(
        self,
        data: bytes,
        clock: Clock,
        on_elected: Callable[[Leadership], None] | None,
        on_revoked: Callable[[str], None] | None,
        on_draining: Callable[[Leadership, float], None] | None,
    ) -> Candidacy:
        """The state machine on our session, its shared standing, and the leader observer
        (which watches only once someone observes)."""
        standing = Standing(
            self._session,
            self.path,
            self.candidate_id,
            clock=clock,
            metrics=self._metrics,
            on_elected=on_elected,
            on_revoked=on_revoked,
            request_timeout=self.config.request_timeout,
            revoke_on_suspend=self.config.suspended_policy is SuspendedPolicy.REVOKE,
        )
        observer = LeaderObserver(
            self._session,
            self.path,
            lambda generation: self._post(ObserverFired(generation)),
            self._deliver_leader,
            retry_delay=self.config.retry_initial_delay * 4,
        )
        return Candidacy(
            self._session,
            self.path,
            data,
            config=self.config,
            clock=clock,
            metrics=self._metrics,
            standing=standing,
            observer=observer,
            observing=self._on_leader_change is not None,
            on_draining=on_draining,
        )

    # -- public API ---------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        with self._cond:
            return self._standing.leadership is not None

    @property
    def node(self) -> str | None:
        """Full path of our candidate node, or None while we have none."""
        name = self._candidacy.node
        return None if name is None else self._child(name)

    @property
    def lifecycle(self) -> Lifecycle:
        return self._standing.lifecycle

    @property
    def session(self) -> Session:
        return self._session

    def start(self, *, wait: bool = True) -> Election:
        """Join as a candidate. Returns after the first attempt to join.

        Raises ConnectionFailedError / ChrootMissingError / PermissionDeniedError
        (nothing is left behind); a connection problem after that is retried.

        The first attempt runs on the calling thread: a path that does not exist yet is
        created in the same transaction as our node (one round trip, and no read: we are
        its only candidate). Where this session has already created nodes with the same
        permissions (a node in this path, or a sibling path under the same parent while the
        parent's children say this path is missing), no answer can be a refusal, so
        ``start()`` returns once the create is handed to the session's batcher and
        consecutive calls overlap their round trips; a permission changed meanwhile (or
        the path created meanwhile by someone else with an ACL refusing us) is then
        reported by ``wait_for_leadership()``.

        ``wait=False`` returns as soon as the session is acquired: the join runs in the
        background without holding a pool thread for its round trips (the create is sent,
        and the children are read the moment it is answered), so thousands of elections on
        one session join in a pipelined burst instead of one round trip each. A terminal
        error then surfaces from ``wait_for_leadership()``, not from ``start()``.
        """
        self._standing.enter_started()
        try:
            self._session.acquire()
        except BaseException:
            self._standing.enter_closed()
            raise
        self._attach()
        first: Future[None] = Future()
        if not wait:
            if self._session.join_slots.acquire(timeout=self.config.request_timeout):
                self._post(Start(None, batched=True))  # the candidacy gives the slot back
            else:
                self._post(Start(first))  # no slot in time: join the usual way
            return self
        if self._session.state is ConnectionState.CONNECTED:
            if self._session.joins.proven(self.path) and self._session.join_slots.acquire(
                timeout=self.config.request_timeout
            ):
                # Nothing the servers could answer is terminal here (JoinBatcher.proven):
                # the create is batched, and consecutive start() calls overlap.
                self._post(Start(None, batched=True))
                return self
            # The first join's round trip on this thread (not sent from a pool thread); the
            # candidacy's actor takes the answer, so ``node`` is set when start() returns.
            joined = self._candidacy.join_first()
            self._post(Start(first, joined))
            if isinstance(joined.error, ZkElectError):
                self.stop()
                raise joined.error
        else:
            self._post(Start(first))
        try:
            first.result(timeout=self.config.request_timeout + self.config.connect_timeout)
        except ZkElectError:
            self.stop()
            raise
        except TimeoutError:
            pass  # still trying in the background
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Leave the election: revoke (``on_revoked('stopped')``), delete our node,
        release threads (and the client, if this election owns it). Idempotent."""
        timeout = check_timeout("timeout", timeout)
        done = self._begin_stop()
        if done is None:
            return
        with contextlib.suppress(TimeoutError):
            done.result(timeout=timeout if timeout is not None else self.config.request_timeout)
        self._finish_stop()

    def _attach(self) -> None:
        """start()'s steps between acquiring the session and joining: the path's ACL
        compared, the candidacy's actor, the metrics, the session's listener."""
        self.acl_mismatch = check_path_acl(self._session, self.path, self._acl)
        pool = self._session.pool
        assert pool is not None  # acquired
        actor: Actor[Message] = Actor(pool, self._candidacy.handle)
        self._candidacy.attach(actor.post, actor.run_here)
        self._metrics.election_started(self.path)
        self._metrics.session_state(self.path, self._session.state.value)
        self._metrics.lease_source(self.path, self._standing.lease_remaining)
        # After the metrics: newer states win.
        self._session.add_state_listener(self._standing.on_session_state)

    def _begin_stop(self) -> Future[None] | None:
        """stop()'s first half, which never blocks: the candidacy is told to leave; its
        answer comes on the future (None: nothing to stop)."""
        if not self._standing.enter_closing():
            return None
        done: Future[None] = Future()
        self._post(Stop(done))
        return done

    def _finish_stop(self) -> None:
        """stop()'s second half, once the candidacy left (or did not answer in time)."""
        standing = self._standing
        self._session.remove_state_listener(self._standing.on_session_state)
        standing.revoke("stopped")  # in case the actor never got to it
        with self._cond:
            standing.lifecycle = Lifecycle.CLOSED
            subscribers, self._subscribers = self._subscribers, []
            self._cond.notify_all()
        for subscriber in subscribers:
            subscriber.put(END)
        self._metrics.election_stopped(self.path)
        self._session.release()

    def resign(self, timeout: float | None = None) -> bool:
        """Give up leadership and stay a candidate, re-queued at the back.

        Returns once our node is deleted (the candidate re-joins right after), or False
        at once if this candidate was not leading. ``lost`` is set before the node is
        deleted, so leader-only work sees the loss first (R9).
        """
        timeout = check_timeout("timeout", timeout)
        self._require_started()
        done: Future[bool] = Future()
        # On this thread if the actor is idle: the delete is sent without a hop (the
        # handover's first step); in order with the candidacy's other steps all the same.
        self._candidacy.run_here(Resign(done))
        return done.result(timeout=timeout if timeout is not None else self.config.request_timeout)

    def request_switchover(self, to: str | None = None, timeout: float = 30.0) -> SwitchoverResult:
        """Hand leadership to candidate ``to`` (a candidate id or a node name; None: the
        next in line), the leader's work drained first (docs/switchover.md). Any candidate
        may ask, the leader too. Returns once ``to`` leads; raises a ``SwitchoverError``
        (nothing left behind) if it cannot: unknown target, another switchover pending,
        refused, the leader or the target not answering within ``timeout``, or leadership
        moving another way meanwhile. Blocks: call it from a thread of your own."""
        self._require_started()
        by = f"candidate {self.candidate_id!r} ({self.node or 'no node'})"
        return request_switchover(
            self._session, self.path, to=to, timeout=timeout, by=by, clock=self._clock
        )

    @overload
    def wait_for_leadership(self, timeout: None = None) -> Leadership: ...

    @overload
    def wait_for_leadership(self, timeout: float) -> Leadership | None: ...

    def wait_for_leadership(self, timeout: float | None = None) -> Leadership | None:
        """Block until this candidate leads; its Leadership, or None on timeout (without
        a timeout it returns only a Leadership, or raises if the election stops)."""
        return self._standing.wait(check_timeout("timeout", timeout))

    @contextlib.contextmanager
    def leadership(self, timeout: float | None = None) -> Iterator[Leadership]:
        """Wait for leadership; give it up on exit.

        If this call started the election, leaving the block stops it (the node is
        deleted, nothing is left behind); otherwise leaving resigns and stays a candidate.
        """
        check_timeout("timeout", timeout)  # before start(): bad input sends nothing
        started_here = self.lifecycle is Lifecycle.LATENT
        if started_here:
            self.start()
        try:
            lead = self.wait_for_leadership(timeout)
            if lead is None:
                raise ElectionTimeoutError(f"not elected leader of {self.path} within {timeout}s")
            yield lead
        finally:
            if started_here:
                self.stop()
            elif self.lifecycle is Lifecycle.STARTED and not self._standing.closing:
                self.resign()

    def leader(self) -> LeaderInfo | None:
        """The current leader, read now from ZooKeeper (None if there is none)."""
        self._require_started()
        found = self._guard(lambda: read_leader(self._session, self.path, order=election_order))
        return None if found is None else LeaderInfo.of(found)

    def leader_seen(self) -> tuple[LeaderInfo | None, float] | None:
        """The leader this election's observer last reported (None: no leader) and since
        when (on the election's clock), from memory: no request. None when it does not
        observe (no ``on_leader_change`` and no ``observe()``): a plain candidate knows only
        its predecessor. What HTTP probes show, since they never send a request."""
        return self._leader_seen

    def candidates(self) -> list[LeaderInfo]:
        """Every contender, in election order (the leader first), read now."""
        self._require_started()
        snapshot = self._guard(
            lambda: read_election(self._session, self.path, order=election_order, settle=False)
        )
        return [LeaderInfo.of(c) for c in snapshot.contenders]

    def observe(self) -> Iterator[LeaderInfo | None]:
        """Yield the current leader (or None), then each change, until the election stops.

        Costs one watch on the current leader's node while anyone observes.
        """
        self._require_started()
        inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._subscribe(inbox)
        try:
            while True:
                item = inbox.get()
                if item is END:
                    return
                yield item  # type: ignore[misc]
        finally:
            self._unsubscribe(inbox)

    def _subscribe(self, inbox: Inbox) -> None:
        """``inbox.put`` gets the leader now, then each change, then ``END`` at stop()."""
        with self._cond:
            self._subscribers.append(inbox)
        self._post(Subscribe(inbox))

    def _unsubscribe(self, inbox: Inbox) -> None:
        with self._cond:
            if inbox in self._subscribers:
                self._subscribers.remove(inbox)

    def __enter__(self) -> Election:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        role = "leader" if self.is_leader else "candidate"
        return f"<Election {self.path} id={self.candidate_id!r} {self.lifecycle.value} {role}>"

    # -- helpers ----------------------------------------------------------------------------------

    def _post(self, message: Message) -> None:
        self._candidacy.post(message)

    def _require_started(self) -> None:
        if self.lifecycle is not Lifecycle.STARTED or self._standing.closing:
            raise ElectionStoppedError(
                f"election {self.path} is {self.lifecycle.value}: call start() first "
                "(a stopped election cannot be reused)"
            )

    def _child(self, name: str) -> str:
        return f"{self.path}/{name}"

    def _guard(self, request: Callable[[], Any]) -> Any:
        try:
            return request()
        except (Retryable, SessionGone):
            raise ConnectionFailedError(
                f"ZooKeeper did not answer within {self.config.request_timeout:g}s "
                f"(connection {self._session.state.value}); try again"
            ) from None

    def _deliver_leader(self, info: LeaderInfo | None) -> None:
        """The observer saw a leader change: tell observe()'s iterators and on_leader_change."""
        self._leader_seen = (info, self._clock())
        with self._cond:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.put(info)
        callback, notifier = self._on_leader_change, self._session.notifier
        if callback is not None and notifier is not None:
            notifier.post(lambda: callback(info))
