"""What other threads see of one candidacy, and the one place leadership flips.

The state machine (candidacy.py) runs on its actor, but leadership is also taken away
from other threads: kazoo's connection thread (a lost or suspended session), the timer
thread (the lease ran out), a fenced write's caller (refused), ``stop()``. So the public
state (lifecycle, failure, the Leadership) lives here, under one lock, and ``grant`` /
``revoke`` are the only code that changes who leads: callbacks fire only on a flip, posted
under the lock so that they keep their order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from zkelect._election.messages import RECHECK, Lifecycle, Message, SessionChanged
from zkelect._election.nodes import election_order
from zkelect._election.ports import SessionPort
from zkelect._logs import emit
from zkelect._zookeeper.outcomes import ConnectionState, NodeStat, NoNode, Retryable, SessionGone
from zkelect.clock import Clock, sleep
from zkelect.errors import ElectionStoppedError, ZkElectError
from zkelect.fencing.leadership import FencingToken, Leadership
from zkelect.metrics import MetricsRecorder

if TYPE_CHECKING:
    from zkelect._zookeeper.session import Session

__all__ = ["FlipListener", "Standing"]

log = logging.getLogger("zkelect")
_T = TypeVar("_T")
# Revocations after which our node (and so the session) may still be alive on the servers.
_SESSION_MAY_LIVE = frozenset({"suspended", "lease_expired"})
_RETRY_PAUSE = 0.05  # between reads of a fenced write's error path while ZooKeeper is away


class FlipListener(Protocol):
    """Told of each flip under the standing's lock, right after it happens and before any
    callback is posted (an AsyncElection hands it to its event loop from here, so that its
    leader-only work is cancelled before any callback or waiter on the loop hears of it).
    Called from any thread; it must only hand the news over, never block."""

    def elected(self, lead: Leadership) -> None: ...

    def revoked(self, lead: Leadership) -> None: ...

    def failed(self, error: ZkElectError) -> None: ...


class Standing:
    """The shared state of one election (guarded by ``cond``) and its leadership flips."""

    def __init__(
        self,
        session: SessionPort,
        path: str,
        candidate_id: str,
        *,
        clock: Clock,
        metrics: MetricsRecorder,
        on_elected: Callable[[Leadership], None] | None,
        on_revoked: Callable[[str], None] | None,
        request_timeout: float,
        revoke_on_suspend: bool,
    ) -> None:
        self.cond = threading.Condition()
        self.lifecycle = Lifecycle.LATENT
        self.closing = False
        self.failure: ZkElectError | None = None
        self.leadership: Leadership | None = None
        #: Puts a message in the candidacy's mailbox (its actor's, set when it starts).
        self.post: Callable[[Message], None] = lambda message: None
        self._revoke_on_suspend = revoke_on_suspend
        self._session = session
        self._path = path
        self.candidate_id = candidate_id
        self._clock = clock
        self._metrics = metrics
        self._on_elected = on_elected
        self._on_revoked = on_revoked
        self._request_timeout = request_timeout
        self.key = id(self)  # ours among the session's lease listeners
        self.listener: FlipListener | None = None

    # -- the lifecycle (for Election's public methods) ------------------------------------------

    def enter_started(self) -> None:
        """LATENT to STARTED; an Election starts once."""
        with self.cond:
            if self.lifecycle is not Lifecycle.LATENT:
                raise ElectionStoppedError(
                    f"election {self._path} was already started; an Election starts once "
                    "(build a new one to join again)"
                )
            self.lifecycle = Lifecycle.STARTED

    def enter_closed(self) -> None:
        with self.cond:
            self.lifecycle = Lifecycle.CLOSED
            self.cond.notify_all()

    def enter_closing(self) -> bool:
        """Whether a stop() must stop the candidacy now (not if never started, or already
        stopping or stopped); a never started election is closed at once."""
        with self.cond:
            if self.lifecycle is Lifecycle.LATENT:
                self.lifecycle = Lifecycle.CLOSED
                self.cond.notify_all()
                return False
            if self.lifecycle is Lifecycle.CLOSED or self.closing:
                return False
            self.closing = True
            return True

    def wait(self, timeout: float | None) -> Leadership | None:
        """Our Leadership once we lead, None after ``timeout``; raises the failure, or
        ElectionStoppedError once stopping."""
        with self.cond:
            if self.lifecycle is Lifecycle.LATENT:
                raise ElectionStoppedError("call start() before waiting for leadership")
            self.cond.wait_for(
                lambda: (
                    self.leadership is not None
                    or self.failure is not None
                    or self.lifecycle is Lifecycle.CLOSED
                    or self.closing
                ),
                timeout,
            )
            if self.leadership is not None:
                return self.leadership
            if self.failure is not None:
                raise self.failure
            if self.lifecycle is Lifecycle.CLOSED or self.closing:
                raise ElectionStoppedError(f"election {self._path} was stopped")
            return None

    # -- the flips ------------------------------------------------------------------------------

    def grant(self, node: str, stat: NodeStat, listing_zxid: int, waiting_since: float) -> None:
        """Lead with ``node``, unless stopping, or the session no longer proves it ours (R2)."""
        session = self._session
        with self.cond:
            if self.leadership is not None:
                return
            if (
                self.closing
                or self.lifecycle is not Lifecycle.STARTED
                or session.state is not ConnectionState.CONNECTED
                or session.session_id != stat.ephemeral_owner  # R2
                or session.lease_remaining() <= 0
            ):
                return
            token = FencingToken(stat.czxid, self._path, self.candidate_id, stat.ephemeral_owner)
            lead = Leadership(
                token,
                f"{self._path}/{node}",
                # Leadership uses only the session's lease and transactions; fencing types
                # it as the concrete Session, which is what an Election hands us.
                cast("Session", session),
                self._revoke_from_outside,
                self._current_leader_epoch,
                self._record_write,
                self._node_gone,
                granted_zxid=max(listing_zxid, stat.czxid),
            )
            self.leadership = lead
            session.watch_lease(self.key, self._on_lease_expired)
            callback = self._on_elected
            # Recorded under the lock, so metrics see flips in the order they happen.
            waited = max(0.0, self._clock() - waiting_since)
            self._metrics.leadership_acquired(self._path, lead.epoch, waited)
            if self.listener is not None:
                self.listener.elected(lead)
            self._notify(None if callback is None else lambda: callback(lead))
        if log.isEnabledFor(logging.INFO):  # the hot path: build nothing unseen
            emit(
                "elected",
                "elected: %s leads %s with epoch %d (%#x), node %s",
                self.candidate_id,
                self._path,
                lead.epoch,
                lead.epoch,
                lead.node_path,
                election=self._path,
                candidate=self.candidate_id,
                epoch=lead.epoch,
                session=token.session_id,
                node=lead.node_path,
            )

    def revoke(self, reason: str) -> None:
        """Stop leading (if we do): ``lost`` is set at once. Safe from any thread."""
        with self.cond:
            current = self.leadership
            if current is None:
                return
            self.leadership = None
            current._mark_lost(reason, self._stop_by(reason))
            self._session.unwatch_lease(self.key)
            callback = self._on_revoked
            self._metrics.leadership_lost(self._path, reason)
            if self.listener is not None:
                self.listener.revoked(current)
            self._notify(None if callback is None else lambda: callback(reason))
        if log.isEnabledFor(logging.INFO):  # the hot path: build nothing unseen
            emit(
                "revoked",
                "revoked (%s): %s no longer leads %s (epoch %d)",
                reason,
                self.candidate_id,
                self._path,
                current.epoch,
                election=self._path,
                candidate=self.candidate_id,
                epoch=current.epoch,
                session=current.token.session_id,
                reason=reason,
            )

    def _notify(self, notify: Callable[[], None] | None) -> None:
        notifier = self._session.notifier
        if notifier is not None and notify is not None:
            notifier.post(notify)  # posted under the lock: callbacks keep their order
        self.cond.notify_all()

    def fail(self, error: ZkElectError) -> None:
        with self.cond:
            self.failure = error
            if self.listener is not None:
                self.listener.failed(error)
            self.cond.notify_all()

    def _stop_by(self, reason: str) -> float:
        """When leader-only work must have stopped after a loss for ``reason``: the earliest
        moment the servers could elect a successor."""
        now = self._clock()
        if reason in _SESSION_MAY_LIVE:
            # Our node lives until the servers expire the session: not before the lease's
            # proven touch + the session timeout (zkelect/_lease.py), less what is kept for the stop
            # itself (LeaseFigures.stop_within).
            session = self._session
            bound = session.lease.successor_possible_at()
            if bound is not None:
                figures = session.lease_figures()
                return max(now, bound - (figures.margin - figures.stop_within))
        return now  # the node is gone (or about to be deleted): a successor may lead now

    # -- called from other threads --------------------------------------------------------------

    def on_session_state(self, state: ConnectionState, session_id: int | None) -> None:
        """The session's listener (kazoo's connection thread): revoke at once where the
        policy says so, then let the candidacy's actor do any I/O."""
        if state is ConnectionState.LOST:
            self.revoke("session_lost")
        elif state is ConnectionState.SUSPENDED and self._revoke_on_suspend:
            self.revoke("suspended")
        self._metrics.session_state(self._path, state.value)
        self.post(SessionChanged(state))

    def _revoke_from_outside(self, reason: str) -> None:
        """Revoked from outside the actor (a fenced write was refused): look again at once,
        so a candidate whose node is still first never waits without a next step."""
        self.revoke(reason)
        self.recheck()

    def recheck(self) -> None:
        """Ask the candidacy to look again, re-checking before it leads."""
        self.post(RECHECK)

    def _on_lease_expired(self) -> None:
        self.revoke("lease_expired")
        # The session may still be alive (a silence shorter than the session timeout outlasts
        # the lease, which ends earlier on purpose), and then nothing else would ever wake
        # the election: our node stays first, everyone else waits behind it. So look again
        # as soon as the lease is proven again: after a reconnect, or after two heartbeat
        # answers (a late answer alone proves nothing, zkelect/_lease.py); then re-check before
        # leading (``Candidacy.recheck``).
        self._session.when_lease_valid(self.key, self.recheck)

    def lease_remaining(self) -> float:
        lead = self.leadership
        return 0.0 if lead is None else lead.lease_remaining()

    def _record_write(self, result: str) -> None:
        self._metrics.fenced_write(self._path, result)

    def _current_leader_epoch(self) -> int | None:
        """The epoch of whoever leads now, best effort (for error messages)."""

        def read() -> int | None:
            try:
                order = election_order(self._session.children(self._path))
            except NoNode:
                return None
            if not order:
                return None
            got = self._session.get_many([f"{self._path}/{order[0].name}"])[0]
            return None if got is None else got[1].czxid

        return self._once_answered(read)

    def _node_gone(self, node_path: str) -> bool | None:
        """Whether ``node_path`` is gone (None if ZooKeeper does not answer in time)."""
        return self._once_answered(lambda: self._session.exists(node_path) is None)

    def _once_answered(self, read: Callable[[], _T]) -> _T | None:
        """``read()``, retried for up to the request timeout while ZooKeeper cannot answer:
        after a session expiry kazoo needs a moment to open a new session. Runs on the
        caller's thread (a fenced write's error path), never on the actor."""
        deadline = self._clock() + self._request_timeout
        while True:
            try:
                return read()
            except (Retryable, SessionGone):
                pass
            except ZkElectError:
                return None
            if self._clock() >= deadline or self.lifecycle is Lifecycle.CLOSED:
                return None
            sleep(self._clock, _RETRY_PAUSE)
