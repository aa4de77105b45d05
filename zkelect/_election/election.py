"""The Election state machine: join, watch the predecessor, lead, resign, rejoin.

What it guarantees
------------------
* At most one candidate *per ZooKeeper's view* leads a path: the one whose
  EPHEMERAL_SEQUENTIAL node is first in order (R4), owned by its current session (R2).
* Each candidate holds exactly one watch: a follower on its immediate predecessor
  (R3), the leader on its own node (so a forced resign is seen at once). Nobody
  watches the children list, so a leader change wakes one candidate, not all.
* ``Leadership.lost`` is set as soon as this process stops leading: its node went
  away, the connection was suspended (default policy), the session was lost, or the
  local lease ran out (R6, R7).

What it does not guarantee
--------------------------
Leadership is advisory. A process paused longer than its session timeout wakes up
believing it leads until it notices otherwise. Anything that matters must be fenced
with the epoch where the write lands (``Leadership.transaction()``, fencing.py).

Threads
-------
Election steps run on the session's small worker pool, one step at a time per
election (an actor, see dispatch.py). ``on_elected``/``on_revoked``/``on_leader_change``
run on the session's callback thread, in order; they must not block for long. Losing
leadership (setting ``lost``) never waits for a callback or a pool thread.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar, overload

from zkelect._election.nodes import (
    CandidateNode,
    LeaderInfo,
    election_order,
    new_node_prefix,
    parse_node,
    sequence_wrap,
)
from zkelect._election.observer import UNSET, LeaderObserver
from zkelect._zookeeper.joins import JoinTicket
from zkelect._zookeeper.session import (
    ConnectionState,
    Listing,
    NodeStat,
    NoNode,
    Pending,
    Retryable,
    Session,
    SessionGone,
    listing_of,
)
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
    PermissionDeniedError,
    ZkElectError,
)
from zkelect.fencing.leadership import FencingToken, Leadership
from zkelect.metrics import MetricsRecorder, NoopRecorder
from zkelect.security import (
    DigestAuth,
    ElectionAcl,
    SaslOptions,
    TlsOptions,
    check_options,
    kazoo_options,
)

__all__ = ["Election", "Lifecycle"]

log = logging.getLogger("zkelect")

_END = object()
_T = TypeVar("_T")
_MAX_PASSES = 16  # re-reads in one step before backing off (a churning election)
# Revocations after which our node (and so the session) may still be alive on the servers.
_SESSION_MAY_LIVE = frozenset({"suspended", "lease_expired"})


class Lifecycle(str, enum.Enum):
    LATENT = "latent"  # built, not started
    STARTED = "started"  # a candidate (leading or not)
    CLOSED = "closed"  # stopped, or failed with a terminal error


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
        metrics: MetricsRecorder | None = None,
        clock: Clock = monotonic_clock,
        auth: DigestAuth | Sequence[DigestAuth] | None = None,
        acl: ElectionAcl | None = None,
        tls: TlsOptions | None = None,
        sasl: SaslOptions | None = None,
    ) -> None:
        self.path = validate_path(path)
        self.candidate_id = default_candidate_id() if candidate_id is None else candidate_id
        self._data = validate_candidate_id(self.candidate_id)
        if config is not None and not isinstance(config, ElectionConfig):
            raise ConfigurationError(f"config must be an ElectionConfig, got {config!r}")
        self.config = config or ElectionConfig()
        for name, callback in (
            ("on_elected", on_elected),
            ("on_revoked", on_revoked),
            ("on_leader_change", on_leader_change),
        ):
            if callback is not None and not callable(callback):
                raise ConfigurationError(f"{name} must be callable, got {callback!r}")
        if not callable(clock):
            raise ConfigurationError(f"clock must be a callable returning seconds, got {clock!r}")
        if metrics is not None and not callable(getattr(metrics, "election_started", None)):
            raise ConfigurationError(f"metrics must be a MetricsRecorder, got {metrics!r}")
        self._on_elected = on_elected
        self._on_revoked = on_revoked
        self._on_leader_change = on_leader_change
        self._metrics: MetricsRecorder = metrics or NoopRecorder()
        self._clock = clock
        digests, self._acl, tls, sasl = check_options(auth, acl, tls, sasl)
        if isinstance(client_or_hosts, str):
            self._session = Session.owned_by_election(
                client_or_hosts,
                self.config,
                clock,
                **kazoo_options(auth=digests, acl=self._acl, tls=tls, sasl=sasl),
            )
        else:
            if digests or tls is not None or sasl is not None:
                raise ConfigurationError(
                    "auth=, tls= and sasl= configure the client zkelect builds from a connect "
                    "string; build your own KazooClient with them instead: "
                    "KazooClient(hosts, **zkelect.kazoo_options(auth=..., tls=..., sasl=...))"
                )
            self._session = Session.for_client(client_or_hosts, self.config, clock)
            if self._acl is not None:
                differs = self._acl.differences(self._session.default_acl())
                if differs is not None:
                    raise ConfigurationError(
                        f"acl= needs the shared KazooClient to create nodes with it, but its "
                        f"default_acl differs ({differs}): build it with "
                        "KazooClient(hosts, **zkelect.kazoo_options(acl=..., auth=...))"
                    )
        #: Set at start() when an ElectionAcl was given and the existing election path has
        #: another ACL (left as it is): what differs. None otherwise.
        self.acl_mismatch: str | None = None

        # Shared with other threads; guarded by _cond.
        self._cond = threading.Condition()
        self._lifecycle = Lifecycle.LATENT
        self._closing = False
        self._failure: ZkElectError | None = None
        self._leadership: Leadership | None = None
        self._subscribers: list[queue.SimpleQueue[object]] = []

        # Owned by the actor (one step at a time): no lock needed.
        self._actor: Any = None
        self._node: str | None = None  # our candidate node's name
        self._node_stat: NodeStat | None = None
        self._attempt_guid: str | None = None
        self._create_uncertain = False
        self._abandoned: list[str] = []  # our nodes still to delete (failed deletes)
        self._foreign: set[str] = set()  # persistent children named like candidates: not ones
        self._unreadable: set[str] = set()  # nodes we may not read (warned about once)
        self._wrap_verdict = (False, False)  # (wrapped, orders_differ) last reported
        self._watch_gen = 0
        self._watched: str | None = None
        self._waiting_since = 0.0
        self._retry_pending = False
        self._retry_delay = self.config.retry_initial_delay
        # Set after a revocation or a reconnect that kept our node: before leading again,
        # read the children after a sync (a lagging member must not show a stale queue) and
        # confirm the session with a round trip sent after deciding to lead (R7).
        self._recheck = False
        # The children, read (or known) ahead of the step that needs them.
        self._prefetched: Pending | Listing | None = None
        self._listing_zxid = 0  # the state our last look at the children showed
        self._joining: JoinTicket | None = None  # a create batched by start(wait=False)
        self._observing = on_leader_change is not None
        self._observer = LeaderObserver(
            self._session,
            self.path,
            lambda generation: self._post("observe", generation),
            self._deliver_leader,
            retry_delay=self.config.retry_initial_delay * 4,
        )

    # -- public API ---------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        with self._cond:
            return self._leadership is not None

    @property
    def node(self) -> str | None:
        """Full path of our candidate node, or None while we have none."""
        name = self._node
        return None if name is None else self._child(name)

    @property
    def lifecycle(self) -> Lifecycle:
        return self._lifecycle

    @property
    def session(self) -> Session:
        return self._session

    def start(self, *, wait: bool = True) -> Election:
        """Join as a candidate. Returns after the first attempt to join.

        Raises ConnectionFailedError / ChrootMissingError / PermissionDeniedError
        (nothing is left behind); a connection problem after that is retried.

        ``wait=False`` returns as soon as the session is acquired: the join runs in the
        background without holding a pool thread for its round trips (the create is sent,
        and the children are read the moment it is answered), so thousands of elections on
        one session join in a pipelined burst instead of one round trip each. A terminal
        error then surfaces from ``wait_for_leadership()``, not from ``start()``.
        """
        with self._cond:
            if self._lifecycle is not Lifecycle.LATENT:
                raise ElectionStoppedError(
                    f"election {self.path} was already started; an Election starts once "
                    "(build a new one to join again)"
                )
            self._lifecycle = Lifecycle.STARTED
        try:
            self._session.acquire()
        except BaseException:
            with self._cond:
                self._lifecycle = Lifecycle.CLOSED
                self._cond.notify_all()
            raise
        self._check_path_acl()
        from zkelect._dispatch import Actor

        self._actor = Actor(self._session.pool, self._handle)  # type: ignore[arg-type]
        self._metrics.election_started(self.path)
        self._metrics.session_state(self.path, self._session.state.value)
        self._metrics.lease_source(self.path, self._lease_remaining)
        self._session.add_state_listener(self._on_session_state)  # after: newer states win
        first: Future[None] = Future()
        if not wait:
            if self._session.join_slots.acquire(timeout=self.config.request_timeout):
                self._post("start", None)  # _send_join gives the slot back
            else:
                self._post("start", first)  # no slot in time: join the usual way
            return self
        self._post("start", first)
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
        with self._cond:
            if self._lifecycle is Lifecycle.LATENT:
                self._lifecycle = Lifecycle.CLOSED
                self._cond.notify_all()
                return
            if self._lifecycle is Lifecycle.CLOSED or self._closing:
                return
            self._closing = True
        done: Future[None] = Future()
        self._post("stop", done)
        with contextlib.suppress(TimeoutError):
            done.result(timeout=timeout if timeout is not None else self.config.request_timeout)
        self._session.remove_state_listener(self._on_session_state)
        self._set_leadership(False, "stopped")  # in case the actor never got to it
        with self._cond:
            self._lifecycle = Lifecycle.CLOSED
            subscribers, self._subscribers = self._subscribers, []
            self._cond.notify_all()
        for subscriber in subscribers:
            subscriber.put(_END)
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
        self._post("resign", done)
        return done.result(timeout=timeout if timeout is not None else self.config.request_timeout)

    @overload
    def wait_for_leadership(self, timeout: None = None) -> Leadership: ...

    @overload
    def wait_for_leadership(self, timeout: float) -> Leadership | None: ...

    def wait_for_leadership(self, timeout: float | None = None) -> Leadership | None:
        """Block until this candidate leads; its Leadership, or None on timeout (without
        a timeout it returns only a Leadership, or raises if the election stops)."""
        timeout = check_timeout("timeout", timeout)
        with self._cond:
            if self._lifecycle is Lifecycle.LATENT:
                raise ElectionStoppedError("call start() before waiting for leadership")
            self._cond.wait_for(
                lambda: (
                    self._leadership is not None
                    or self._failure is not None
                    or self._lifecycle is Lifecycle.CLOSED
                    or self._closing
                ),
                timeout,
            )
            if self._leadership is not None:
                return self._leadership
            if self._failure is not None:
                raise self._failure
            if self._lifecycle is Lifecycle.CLOSED or self._closing:
                raise ElectionStoppedError(f"election {self.path} was stopped")
            return None

    @contextlib.contextmanager
    def leadership(self, timeout: float | None = None) -> Iterator[Leadership]:
        """Wait for leadership; give it up on exit.

        If this call started the election, leaving the block stops it (the node is
        deleted, nothing is left behind); otherwise leaving resigns and stays a candidate.
        """
        check_timeout("timeout", timeout)  # before start(): bad input sends nothing
        started_here = self._lifecycle is Lifecycle.LATENT
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
            elif self._lifecycle is Lifecycle.STARTED and not self._closing:
                self.resign()

    def leader(self) -> LeaderInfo | None:
        """The current leader, read now from ZooKeeper (None if there is none)."""
        self._require_started()
        for _ in range(_MAX_PASSES):
            order = self._read_order()
            for first in order:
                paths = [self._child(first.name)]
                got = self._guard(lambda: self._session.get_many(paths))[0]  # noqa: B023
                if got is None:
                    break  # the leader left meanwhile: read the order again
                data, stat = got
                if stat.ephemeral_owner != 0:  # a persistent node is not a candidate
                    return LeaderInfo.from_node(first, data, stat.czxid, stat.ephemeral_owner)
            else:
                return None
        return None

    def candidates(self) -> list[LeaderInfo]:
        """Every contender, in election order (the leader first), read now."""
        self._require_started()
        order = self._read_order()
        got = self._guard(lambda: self._session.get_many([self._child(n.name) for n in order]))
        return [
            LeaderInfo.from_node(node, data, stat.czxid, stat.ephemeral_owner)
            for node, item in zip(order, got, strict=False)
            if item is not None
            for data, stat in [item]
            if stat.ephemeral_owner != 0  # a persistent node is not a candidate
        ]

    def observe(self) -> Iterator[LeaderInfo | None]:
        """Yield the current leader (or None), then each change, until the election stops.

        Costs one watch on the current leader's node while anyone observes.
        """
        self._require_started()
        inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        with self._cond:
            self._subscribers.append(inbox)
        self._post("subscribe", inbox)
        try:
            while True:
                item = inbox.get()
                if item is _END:
                    return
                yield item  # type: ignore[misc]
        finally:
            with self._cond:
                if inbox in self._subscribers:
                    self._subscribers.remove(inbox)

    def __enter__(self) -> Election:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        role = "leader" if self.is_leader else "candidate"
        return f"<Election {self.path} id={self.candidate_id!r} {self._lifecycle.value} {role}>"

    # -- helpers for the public API -------------------------------------------------------------

    def _require_started(self) -> None:
        if self._lifecycle is not Lifecycle.STARTED or self._closing:
            raise ElectionStoppedError(
                f"election {self.path} is {self._lifecycle.value}: call start() first "
                "(a stopped election cannot be reused)"
            )

    def _child(self, name: str) -> str:
        return f"{self.path}/{name}"

    def _check_path_acl(self) -> None:
        """Report (never change) an existing election path whose ACL is not ``acl=``'s."""
        if self._acl is None:
            return
        try:
            found = self._session.get_acl(self.path)
        except (NoNode, Retryable, SessionGone, ZkElectError):
            return  # missing: we create it with ours; unreadable: the join will say so
        differs = self._acl.differences(found)
        if differs is not None:
            self.acl_mismatch = differs
            log.warning(
                "zkelect %s: the election path exists with another ACL than acl= asks for "
                "(%s); it is left as it is: change it with setAcl if it should match",
                self.path,
                differs,
            )

    def _guard(self, request: Callable[[], Any]) -> Any:
        try:
            return request()
        except (Retryable, SessionGone):
            raise ConnectionFailedError(
                f"ZooKeeper did not answer within {self.config.request_timeout:g}s "
                f"(connection {self._session.state.value}); try again"
            ) from None

    def _read_order(self) -> list[Any]:
        try:
            children = self._guard(lambda: self._session.children(self.path))
        except NoNode:
            return []
        return election_order(children)

    def _post(self, kind: str, payload: object = None) -> None:
        actor = self._actor
        if actor is not None:
            actor.post((kind, payload))

    # -- the one place leadership changes -------------------------------------------------------

    def _set_leadership(self, leading: bool, reason: str) -> None:
        """Flip leadership; callbacks fire only on a flip. Safe from any thread."""
        session = self._session
        with self._cond:
            current = self._leadership
            if leading == (current is not None):
                return
            if leading:
                stat = self._node_stat
                node = self._node
                if (
                    self._closing
                    or self._lifecycle is not Lifecycle.STARTED
                    or stat is None
                    or node is None
                    or session.state is not ConnectionState.CONNECTED
                    or session.session_id != stat.ephemeral_owner  # R2
                    or session.lease_remaining() <= 0
                ):
                    return
                token = FencingToken(stat.czxid, self.path, self.candidate_id, stat.ephemeral_owner)
                lead = Leadership(
                    token,
                    self._child(node),
                    session,
                    self._revoke,
                    self._current_leader_epoch,
                    self._record_write,
                    self._node_gone,
                    granted_zxid=max(self._listing_zxid, stat.czxid),
                )
                self._leadership = lead
                session.watch_lease(id(self), self._on_lease_expired)
                notify = self._notify_elected(lead)
                # Recorded under the lock, so metrics see flips in the order they happen.
                waited = max(0.0, self._clock() - self._waiting_since)
                self._metrics.leadership_acquired(self.path, lead.epoch, waited)
            else:
                assert current is not None
                self._leadership = None
                current._mark_lost(reason, self._stop_by(reason))
                session.unwatch_lease(id(self))
                notify = self._notify_revoked(reason)
                self._metrics.leadership_lost(self.path, reason)
            notifier = session.notifier
            if notifier is not None and notify is not None:
                notifier.post(notify)  # posted under the lock: callbacks keep their order
            self._cond.notify_all()

    def _stop_by(self, reason: str) -> float:
        """When leader-only work must have stopped after a loss for ``reason``: the earliest
        moment the servers could elect a successor."""
        now = self._clock()
        if reason in _SESSION_MAY_LIVE:
            # Our node lives until the servers expire the session: not before the lease's
            # proven touch + the session timeout (lease.py), less what is kept for the stop
            # itself (LeaseFigures.stop_within).
            session = self._session
            bound = session.lease.successor_possible_at()
            if bound is not None:
                figures = session.lease_figures()
                return max(now, bound - (figures.margin - figures.stop_within))
        return now  # the node is gone (or about to be deleted): a successor may lead now

    def _notify_elected(self, lead: Leadership) -> Callable[[], None] | None:
        callback = self._on_elected
        if callback is None:
            return None
        return lambda: callback(lead)

    def _notify_revoked(self, reason: str) -> Callable[[], None] | None:
        callback = self._on_revoked
        if callback is None:
            return None
        return lambda: callback(reason)

    def _current_leader_epoch(self) -> int | None:
        """The epoch of whoever leads now, best effort (for error messages)."""

        def read() -> int | None:
            try:
                order = election_order(self._session.children(self.path))
            except NoNode:
                return None
            if not order:
                return None
            got = self._session.get_many([self._child(order[0].name)])[0]
            return None if got is None else got[1].czxid

        return self._once_answered(read)

    def _node_gone(self, node_path: str) -> bool | None:
        """Whether ``node_path`` is gone (None if ZooKeeper does not answer in time)."""
        return self._once_answered(lambda: self._session.exists(node_path) is None)

    def _once_answered(self, read: Callable[[], _T]) -> _T | None:
        """``read()``, retried for up to the request timeout while ZooKeeper cannot answer:
        after a session expiry kazoo needs a moment to open a new session. Runs on the
        caller's thread (a fenced write's error path), never on the actor."""
        deadline = self._clock() + self.config.request_timeout
        while True:
            try:
                return read()
            except (Retryable, SessionGone):
                pass
            except ZkElectError:
                return None
            if self._clock() >= deadline or self._lifecycle is Lifecycle.CLOSED:
                return None
            time.sleep(0.05)

    def _record_write(self, result: str) -> None:
        self._metrics.fenced_write(self.path, result)

    def _lease_remaining(self) -> float:
        lead = self._leadership
        return 0.0 if lead is None else lead.lease_remaining()

    def _revoke(self, reason: str) -> None:
        """Revoked from outside the actor (a fenced write was refused): look again at once,
        so a candidate whose node is still first never waits without a next step."""
        self._set_leadership(False, reason)
        self._post("recheck")

    def _on_lease_expired(self) -> None:
        self._set_leadership(False, "lease_expired")
        # The session may still be alive (a silence shorter than the session timeout outlasts
        # the lease, which ends earlier on purpose), and then nothing else would ever wake
        # the election: our node stays first, everyone else waits behind it. So look again
        # as soon as the lease is proven again: after a reconnect, or after two heartbeat
        # answers (a late answer alone proves nothing, lease.py); then re-check before
        # leading (``_recheck``).
        self._session.when_lease_valid(id(self), lambda: self._post("recheck"))

    def _on_session_state(self, state: ConnectionState, session_id: int | None) -> None:
        # kazoo's connection thread: revoke at once where the policy says so, then let
        # the actor do any I/O.
        if state is ConnectionState.LOST:
            self._set_leadership(False, "session_lost")
        elif (
            state is ConnectionState.SUSPENDED
            and self.config.suspended_policy is SuspendedPolicy.REVOKE
        ):
            self._set_leadership(False, "suspended")
        self._metrics.session_state(self.path, state.value)
        self._post("state", state)

    # -- the actor: every step below runs one at a time --------------------------------------

    def _handle(self, message: tuple[str, Any]) -> None:
        kind, payload = message
        if kind == "stop":
            self._step_stop(payload)
            return
        if kind == "start" and payload is None and (self._closing or self._failure is not None):
            self._session.join_slots.release()
        if self._closing or self._failure is not None:
            if kind == "resign":
                payload.set_result(False)
            return
        if kind == "start":
            self._waiting_since = self._clock()
            if payload is None:
                self._send_join()
            else:
                self._reconcile(first=payload)
            self._observe()
        elif kind == "joined":
            self._step_joined(*payload)
        elif kind == "watch":
            generation, prefetched = payload
            if generation == self._watch_gen:
                self._watched = None
                self._waiting_since = self._clock()
                self._prefetched = prefetched
                self._reconcile()
        elif kind == "retry":
            self._retry_pending = False
            self._reconcile()
        elif kind == "rejoin":
            self._reconcile()
        elif kind == "recheck":
            self._recheck = True
            self._reconcile()
        elif kind == "own_watch":
            self._step_own_watch(*payload)
        elif kind == "state":
            self._step_state(payload)
        elif kind == "resign":
            self._step_resign(payload)
        elif kind == "subscribe":
            if self._observer.last is not UNSET:
                payload.put(self._observer.last)
            self._observing = True
            self._observe()
        elif kind == "observe":
            self._observer.on_fired(payload)

    def _step_state(self, state: ConnectionState) -> None:
        self._prefetched = None
        if state is ConnectionState.LOST:
            # The old session's nodes are not ours any more, even while still visible (R2).
            self._node = None
            self._node_stat = None
            self._attempt_guid = None
            self._create_uncertain = False
            self._joining = None
            self._abandoned.clear()
            self._watched = None
            self._watch_gen += 1
            self._observer.invalidate()
        elif state is ConnectionState.CONNECTED:
            # Same session: kazoo re-registers our watch with the server (which fires it
            # if the node changed meanwhile), so keep it; but read the children again,
            # after a sync: the member we reconnected to may lag behind (R7).
            self._recheck = True
            self._reconcile()
            self._observe()

    def _step_resign(self, done: Future[bool]) -> None:
        node, stat = self._node, self._node_stat
        if self._leadership is None or node is None or stat is None:
            done.set_result(False)
            return
        self._set_leadership(False, "resigned")  # lost is set before the node goes (R9)
        # Forgotten before the delete: our own watch then fires as a stale generation and
        # sends no read, which would land on the servers just as the successor needs them.
        self._forget_node()
        try:
            with contextlib.suppress(NoNode):
                self._session.delete(self._child(node))
        except (Retryable, SessionGone):
            self._abandoned.append(node)  # the re-join step deletes it first
        except PermissionDeniedError as exc:
            # We may create here but not delete: the node stays first, so we lead again
            # (same epoch) rather than leave an election nobody can lead (R11).
            self._adopt(node, stat)
            done.set_exception(self._cannot_delete(node, "resign", exc))
            self._recheck = True
            self._reconcile()
            return
        done.set_result(True)
        # Re-join at the back in a step of its own, a moment later: resign() returns as soon
        # as the node is gone, and the successor's reads do not compete with our create.
        timers, delay = self._session.timers, self.config.requeue_delay
        if delay > 0 and timers is not None:
            timers.call_later(delay, lambda: self._post("rejoin"))
        else:
            self._post("rejoin")

    def _step_stop(self, done: Future[None]) -> None:
        with contextlib.suppress(Exception):
            self._take_join()  # a create still in flight: wait for it, so it is deleted too
        node, stat = self._node, self._node_stat
        self._set_leadership(False, "stopped")
        if node is not None:
            self._abandoned.append(node)
            self._forget_node()
        self._watch_gen += 1
        self._observer.invalidate()
        try:
            self._delete_on_leaving()
        except PermissionDeniedError as exc:
            ours = node is not None and stat is not None and node in self._abandoned
            if ours and not self._session.owned:
                assert node is not None and stat is not None
                # A shared session outlives us: the node would block the election for as
                # long as it lives. Stay a candidate (leading again if first) and say why.
                self._abandoned.remove(node)
                self._adopt(node, stat)
                with self._cond:
                    self._closing = False
                done.set_exception(self._cannot_delete(node, "stop", exc))
                self._recheck = True
                self._reconcile()
                return
            self._session.abandon([self._child(name) for name in self._abandoned])
            self._abandoned.clear()
        done.set_result(None)

    def _delete_on_leaving(self) -> None:
        """Delete our nodes for stop(); what cannot be deleted in time is left to the session
        (an owned one is closed, a shared one deletes them once it is connected again)."""
        deadline = self._clock() + self.config.request_timeout
        while self._session.state is ConnectionState.CONNECTED and self._clock() < deadline:
            try:
                self._delete_abandoned()
                if self._create_uncertain:
                    self._delete_uncertain_create()
                return
            except (Retryable, SessionGone):
                continue
            except PermissionDeniedError:
                raise
            except ZkElectError:
                break
        self._session.abandon([self._child(name) for name in self._abandoned])
        self._abandoned.clear()

    def _cannot_delete(self, node: str, what: str, exc: PermissionDeniedError) -> ZkElectError:
        return PermissionDeniedError(
            f"cannot {what}: ZooKeeper refused to delete our candidate node {self._child(node)} "
            f"(this identity may create nodes in {self.path} but not delete them: DELETE is "
            "missing from the election path's ACL). The node stays, so this candidate keeps "
            f"its place and leads again if first; grant DELETE on {self.path} to the "
            f"candidates' identity (setAcl). ({exc})"
        )

    def _forget_node(self) -> None:
        self._node = None
        self._node_stat = None
        self._watched = None
        self._watch_gen += 1

    def _reconcile(self, first: Future[None] | None = None) -> None:
        """Bring our candidacy in line with ZooKeeper; schedule a retry on failure."""
        try:
            if self._session.state is ConnectionState.CONNECTED:
                self._reconcile_once()
                self._retry_delay = self.config.retry_initial_delay
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
        self._delete_abandoned()
        for _ in range(_MAX_PASSES):
            if self._node is None:
                self._join()
            try:
                children = self._read_children()
            except NoNode:
                children = []  # the election path itself was deleted (R10)
            order = self._skip_foreign(election_order(children), children)
            self._metrics.candidates_seen(self.path, len(order))
            self._report_wrap(order)
            names = [node.name for node in order]
            if self._node not in names:
                self._set_leadership(False, "node_deleted")
                self._forget_node()
                continue
            index = names.index(self._node)
            orphans = self._own_orphans(order[:index])
            if orphans:
                # Nodes of our own create attempt ahead of us (a create whose reply was lost,
                # missed by a look at a lagging member, then made again): never wait on them.
                log.warning("zkelect %s: deleting our own orphan node(s) %s", self.path, orphans)
                self._abandoned.extend(orphans)
                self._delete_abandoned()
                continue
            if index == 0:
                stat = self._node_stat
                if stat is None or stat.ephemeral_owner != self._session.session_id:
                    self._set_leadership(False, "session_changed")  # R2: not our node now
                    self._forget_node()
                    continue
                self._lead()
                return
            if not self._watch(names[index - 1]):
                continue  # the predecessor left meanwhile, or is foreign: read again (R3)
            # After the watch: a leader is not revoked for a foreign node ahead of it (a
            # real candidate can never be created ahead of the leader: sequences only grow).
            self._set_leadership(False, "not_first")
            self._recheck = False
            return
        self._schedule_retry()

    def _report_wrap(self, order: list[CandidateNode]) -> None:
        """Report ZooKeeper's sequence-counter wrap: the gauge at every look, the log once
        per change of the verdict (it lasts until the path is recreated; docs/safety.md).

        Every look pays only a scan for a negative sequence (this is on the handover's path,
        with thousands of candidates); the orders are compared only once one is found."""
        wrapped = any(node.sequence < 0 for node in order)
        self._metrics.sequence_wrapped(self.path, wrapped)
        if not wrapped and self._wrap_verdict == (False, False):
            return
        wrap = sequence_wrap(order)
        verdict = (wrap.wrapped, wrap.orders_differ)
        if verdict == self._wrap_verdict:
            return
        self._wrap_verdict = verdict
        warning = wrap.warning(self.path)
        if warning is not None:
            log.warning("zkelect %s", warning)
        else:
            log.info(
                "zkelect %s: no negative sequence number any more; zkelect's, Curator's and "
                "kazoo's orders agree",
                self.path,
            )

    def _lead(self) -> None:
        """Our node is first and ours: lead, once the session is proven alive (R7)."""
        if self._recheck:
            # After a revocation or a reconnect: a round trip through the ZooKeeper leader
            # sent after deciding, so a session the servers are expiring is not led on.
            self._session.sync()
        if self._session.lease_remaining() <= 0:
            # Not proven (yet): a client connected before we saw it, a lease that ran out,
            # a create found again by reads. The heartbeat proves it soon (lease.py).
            self._session.when_lease_valid(id(self), lambda: self._post("rejoin"))
            return
        self._recheck = False
        self._set_leadership(True, "elected")
        self._watch_own_node()

    def _own_orphans(self, ahead: list[CandidateNode]) -> list[str]:
        """Nodes ahead of ours that carry our node's GUID: made by our own create attempt."""
        own = parse_node(self._node or "")
        if own is None or own.guid is None:
            return []
        return [node.name for node in ahead if node.guid == own.guid]

    def _watch_own_node(self) -> None:
        """The leader's one watch is on its own node, so a forced resign is seen at once.

        Sent without waiting: the flip to leader (and on_elected) need not wait a round
        trip for it; if the node is already gone, the answer's step revokes.
        """
        node = self._node
        if node is None or self._watched == node:
            return
        self._watch_gen += 1
        generation = self._watch_gen
        pending = self._session.send_get(self._child(node), watch=self._on_fired(generation))
        self._watched = node

        def answered() -> None:
            if not pending.succeeded():  # the usual answer needs no step of its own
                self._post("own_watch", (generation, pending))

        pending.when_done(answered)

    def _on_fired(self, generation: int) -> Callable[[], None]:
        """A watch callback for watch ``generation`` (our predecessor's node, or our own).

        On kazoo's callback thread it sends the re-read of the children right away, so the
        round trip overlaps the hop to a pool thread (the handover's critical path). A watch
        we already moved on from (our own node after resigning) sends nothing: that read
        would land on the servers just as the successor needs them.
        """

        def fired() -> None:
            if generation == self._watch_gen:
                self._post("watch", (generation, self._session.send_listing(self.path)))

        return fired

    def _step_own_watch(self, generation: int, pending: Pending) -> None:
        if generation != self._watch_gen:
            return
        try:
            try:
                pending.result()
            except PermissionDeniedError:  # not even our own node readable: see _watch_stat
                node = self._child(self._node or "")
                if self._watch_stat(node, self._on_fired(generation)) is None:
                    raise NoNode(node) from None
        except NoNode:
            self._set_leadership(False, "node_deleted")
            self._forget_node()
            self._reconcile()
        except (Retryable, SessionGone):
            self._watched = None  # set it again on the next look
            self._schedule_retry()
        except ZkElectError as exc:
            self._fail(exc)

    def _skip_foreign(self, order: list[CandidateNode], children: list[str]) -> list[CandidateNode]:
        if not self._foreign:
            return order
        self._foreign.intersection_update(children)  # forget the ones deleted meanwhile
        return [node for node in order if node.name not in self._foreign]

    def _read_children(self) -> list[str]:
        """The children, read ahead or now; remembers the zxid of the state they show.

        Read now after a revocation or a reconnect (``_recheck``): after a sync, so that a
        member that lags behind the leader cannot show us first in a stale queue.
        """
        prefetched, self._prefetched = self._prefetched, None
        if isinstance(prefetched, Listing):
            listing = prefetched
        elif prefetched is not None:
            listing = listing_of(prefetched.result())
        else:
            if self._recheck:
                self._session.sync()
            listing = self._session.listing(self.path)
        self._listing_zxid = listing.pzxid
        return listing.names

    def _watch(self, name: str) -> bool:
        """Leave our one watch on ``name``; False if it is gone or not a candidate."""
        if self._watched == name:
            return True
        self._watch_gen += 1
        generation = self._watch_gen
        self._watched = None  # a watch set before is stale now (its generation is old)
        stat = self._watch_stat(self._child(name), self._on_fired(generation))
        if stat is None:
            return False
        if stat.ephemeral_owner == 0:
            # Named like a candidate but persistent: no session owns it, so it would block
            # the election for ever. Not a candidate (its watch is stale: generation).
            log.warning(
                "zkelect %s: ignoring %s: a persistent node is not a candidate", self.path, name
            )
            self._foreign.add(name)
            return False
        self._watched = name
        return True

    def _watch_stat(self, path: str, fired: Callable[[], None]) -> NodeStat | None:
        """Leave a watch that fires when the node at ``path`` goes; its stat, or None if it
        is gone already.

        A data watch by a get: it leaves nothing behind when the node is gone (an exists
        would leave a watch waiting for a creation that never comes). But a get needs READ
        on the node, which another candidate's ACL may not grant us, and ZooKeeper does not
        deliver any event of a node to a session that may not read it. The election path
        we can read (we listed it): then its children are watched instead, which wakes us
        on every join and leave, the price of that ACL. A permission error must not take a
        candidate out of the queue, nor leave it waiting for ever (R11).
        """
        try:
            _, stat = self._session.get(path, watch=fired)
        except NoNode:
            return None
        except PermissionDeniedError:
            if path not in self._unreadable:
                self._unreadable.add(path)
                log.warning(
                    "zkelect %s: may not read %s (its ACL lacks READ for us): watching the "
                    "election path's children instead; grant the candidates READ on each "
                    "other's nodes to be woken only by a predecessor",
                    self.path,
                    path,
                )
            self._session.children(self.path, watch=fired)
            return self._session.exists(path)  # a stat needs no permission
        return stat

    def _join(self) -> None:
        """Create our node, finding it again if a previous create's reply was lost (R1)."""
        if self._take_join():
            return
        session_id = self._session.session_id
        if self._attempt_guid is None:
            self._attempt_guid = str(uuid.uuid4())
            self._create_uncertain = False
        prefix = new_node_prefix(self._attempt_guid)
        if self._create_uncertain:
            found = self._find_own(prefix, session_id)
            if found is not None:
                self._adopt(*found)
                return
        self._create_uncertain = True
        created, stat = self._session.create_candidate(self._child(prefix), self._data)
        self._adopt(created.rsplit("/", 1)[1], stat)

    def _send_join(self) -> None:
        """The first join of ``start(wait=False)``: hand the create to the session's batcher.

        Its answer comes back as a "joined" step with the children already known: none to
        read if the batch created the election path too (nothing can precede us), else
        read from kazoo's thread the moment the create is answered (so it sees our node).
        """
        slots = self._session.join_slots
        if self._session.state is not ConnectionState.CONNECTED or self._node is not None:
            slots.release()
            self._reconcile()  # nothing to pipeline; the usual path retries as needed
            return
        guid = str(uuid.uuid4())
        self._attempt_guid = guid
        self._create_uncertain = True  # R1: a lost reply is found again by its prefix
        ticket = self._session.joins.submit(
            self.path, self._child(new_node_prefix(guid)), self._data
        )

        def answered() -> None:
            slots.release()
            children: Pending | Listing | None = None
            with contextlib.suppress(Exception):
                outcome = ticket.result(0)
                if outcome.first:  # as of its creation, our node was the only one
                    name = outcome.node_path.rsplit("/", 1)[1]
                    children = Listing([name], outcome.stat.czxid)
                else:
                    children = self._session.send_listing(self.path)
            self._post("joined", (guid, ticket, children))

        self._joining = ticket
        ticket.when_done(answered)

    def _take_join(self) -> bool:
        """Adopt the answer of a create sent by ``_send_join`` (waiting for it if need be).

        False if none is in flight; raises what the create raised (``_create_uncertain``
        stays set, so a retry finds the node by its prefix if it did land).
        """
        ticket, self._joining = self._joining, None
        if ticket is None:
            return False
        outcome = ticket.result(self.config.request_timeout)
        self._adopt(outcome.node_path.rsplit("/", 1)[1], outcome.stat)
        return True

    def _step_joined(
        self, guid: str, ticket: JoinTicket, children: Pending | Listing | None
    ) -> None:
        if ticket is not self._joining or guid != self._attempt_guid:
            return  # already taken by another step, or reset by a lost session
        try:
            self._take_join()
        except (Retryable, SessionGone, NoNode):
            self._schedule_retry()
            return
        except ZkElectError as exc:
            self._fail(exc)
            return
        self._prefetched = children
        self._reconcile()

    def _find_own(self, prefix: str, session_id: int | None) -> tuple[str, NodeStat] | None:
        """Our node of an uncertain create (R1). Looked for after a sync: the member we are
        connected to now may not have applied that create yet, and a node we miss would be
        an orphan ahead of the one we create instead."""
        try:
            self._session.sync()
            children = self._session.children(self.path)
        except NoNode:
            return None
        for name in children:
            if name.startswith(prefix):
                stat = self._session.exists(self._child(name))
                if stat is not None and stat.ephemeral_owner == session_id:
                    return name, stat
        return None

    def _adopt(self, name: str, stat: NodeStat) -> None:
        self._node = name
        self._node_stat = stat
        self._attempt_guid = None
        self._create_uncertain = False
        self._watched = None
        self._waiting_since = self._clock()

    def _delete_abandoned(self) -> None:
        while self._abandoned:
            with contextlib.suppress(NoNode):
                self._session.delete(self._child(self._abandoned[0]))
            self._abandoned.pop(0)

    def _delete_uncertain_create(self) -> None:
        if self._attempt_guid is None:
            return
        found = self._find_own(new_node_prefix(self._attempt_guid), self._session.session_id)
        if found is not None:
            with contextlib.suppress(NoNode):
                self._session.delete(self._child(found[0]))
        self._create_uncertain = False
        self._attempt_guid = None

    def _schedule_retry(self) -> None:
        timers = self._session.timers
        if self._retry_pending or timers is None:
            return
        self._retry_pending = True
        delay = self._retry_delay * random.uniform(0.5, 1.0)
        self._retry_delay = min(self._retry_delay * 2, self.config.retry_max_delay)
        timers.call_later(delay, lambda: self._post("retry"))

    def _fail(self, error: ZkElectError) -> None:
        log.error("zkelect %s: giving up: %s", self.path, error)
        with self._cond:
            self._failure = error
            self._cond.notify_all()
        self._set_leadership(False, "failed")
        if self._node is not None:
            self._abandoned.append(self._node)
            self._forget_node()
        # A failed candidate must not keep its place in the queue: everyone behind it
        # would wait for ever. What cannot be deleted is left to the session (R11).
        with contextlib.suppress(Exception):
            self._delete_abandoned()
        if self._abandoned:
            self._session.abandon([self._child(name) for name in self._abandoned])
            self._abandoned.clear()

    # -- observing the leader (opt-in) ---------------------------------------------------------

    def _observe(self) -> None:
        if self._observing:
            self._observer.refresh()

    def _deliver_leader(self, info: LeaderInfo | None) -> None:
        with self._cond:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.put(info)
        callback, notifier = self._on_leader_change, self._session.notifier
        if callback is not None and notifier is not None:
            notifier.post(lambda: callback(info))
