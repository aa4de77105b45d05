"""Step 4 of the candidacy: leave (resign, stop, or fail), mixed into ``Candidacy``.

Kept apart so that candidacy.py reads as the join-look-lead cycle; these steps run on the
same actor and use the candidacy's fields (declared below, set by ``Candidacy``).
"""

from __future__ import annotations

import abc
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future

from zkelect._election._joining import Joiner
from zkelect._election._leaving import Leaving
from zkelect._election._marking import Marker
from zkelect._election._watching import Watches
from zkelect._election.messages import REJOIN, Message, ResignSent
from zkelect._election.ports import ObserverPort, PendingPort, SessionPort
from zkelect._election.standing import Standing
from zkelect._zookeeper.outcomes import NodeStat
from zkelect.config import ElectionConfig
from zkelect.errors import PermissionDeniedError, ZkElectError

__all__ = ["LeaveSteps"]

log = logging.getLogger("zkelect")


class LeaveSteps(abc.ABC):
    """``_resign``, ``_stop`` and ``_fail``: the candidacy gives up its node (R9, R11)."""

    path: str
    node: str | None
    node_stat: NodeStat | None
    standing: Standing
    post: Callable[[Message], None]
    _session: SessionPort
    _config: ElectionConfig
    _joiner: Joiner
    _leaving: Leaving
    _marker: Marker
    _watches: Watches
    _observer: ObserverPort
    _recheck: bool
    _first_answer: Future[None] | None

    @abc.abstractmethod
    def _adopt(self, name: str, stat: NodeStat) -> None:
        """Take ``name`` as our node (candidacy.py)."""

    @abc.abstractmethod
    def _forget_node(self, *, marker: bool = True) -> None:
        """We have no node any more (candidacy.py)."""

    @abc.abstractmethod
    def _reconcile(self, first: Future[None] | None = None) -> None:
        """Look again and act on it (candidacy.py)."""

    def _resign(self, done: Future[bool], reason: str = "resigned") -> None:
        """Resign's first half: lost, then our node's delete sent. It may run on the caller's
        thread (``Actor.run_here``: an event loop's, too), so it never waits for the answer:
        ``_resign_sent`` takes it, in a step of its own. ``reason``: "resigned", or
        "switchover" at the end of a planned switchover's drain."""
        node, stat = self.node, self.node_stat
        if self.standing.leadership is None or node is None or stat is None:
            done.set_result(False)
            return
        self.standing.revoke(reason)  # lost is set before the node goes (R9)
        # Forgotten before the delete: our own watch then fires as a stale generation and
        # sends no read, which would land on the servers just as the successor needs them.
        self._forget_node(marker=False)
        self.post(ResignSent(node, stat, self._leaving.send_delete(node), done))

    def _resign_sent(
        self, node: str, stat: NodeStat, answer: PendingPort, done: Future[bool]
    ) -> None:
        try:
            self._leaving.deleted(node, answer)
            self._marker.remove()  # after the node: its delete is on the handover's path
        except PermissionDeniedError as exc:
            # We may create here but not delete: the node stays first, so we lead again
            # (same epoch) rather than leave an election nobody can lead (R11).
            self._adopt(node, stat)
            done.set_exception(self._leaving.cannot_delete(node, "resign", exc))
            self._recheck = True
            self._reconcile()
            return
        done.set_result(True)
        # Re-join at the back in a step of its own, a moment later: resign() returns as soon
        # as the node is gone, and the successor's reads do not compete with our create.
        timers, delay, post = self._session.timers, self._config.requeue_delay, self.post
        if delay > 0 and timers is not None:
            timers.call_later(delay, lambda: post(REJOIN))
        else:
            post(REJOIN)

    def _stop(self, done: Future[None]) -> None:
        first, self._first_answer = self._first_answer, None
        if first is not None:  # a batched first join still in flight: its start() is over
            first.set_result(None)
        with contextlib.suppress(Exception):
            taken = self._joiner.take()  # a create still in flight: wait, so it is deleted too
            if taken is not None:
                self._adopt(*taken)
        node, stat = self.node, self.node_stat
        self.standing.revoke("stopped")
        if node is not None:
            self._leaving.abandoned.append(node)
            self._forget_node(marker=False)  # the node goes first: a successor waits on it
        marker = self._marker.take()
        if marker is not None:
            self._leaving.abandoned.append(marker)
        self._watches.generation += 1
        self._observer.invalidate()
        try:
            self._leaving.delete_on_leaving(self._joiner)
        except PermissionDeniedError as exc:
            ours = node is not None and stat is not None and node in self._leaving.abandoned
            if ours and not self._session.owned:
                assert node is not None and stat is not None
                # A shared session outlives us: the node would block the election for as
                # long as it lives. Stay a candidate (leading again if first) and say why.
                self._leaving.abandoned.remove(node)
                if marker is not None:  # it stays too: the node it marks stays first
                    self._leaving.abandoned.remove(marker)
                    self._marker.name = marker
                self._adopt(node, stat)
                with self.standing.cond:
                    self.standing.closing = False
                done.set_exception(self._leaving.cannot_delete(node, "stop", exc))
                self._recheck = True
                self._reconcile()
                return
            self._leaving.abandon_all()
        done.set_result(None)

    def _fail(self, error: ZkElectError) -> None:
        log.error("zkelect %s: giving up: %s", self.path, error)
        self.standing.fail(error)
        self.standing.revoke("failed")
        if self.node is not None:
            self._leaving.abandoned.append(self.node)
            self._forget_node()
        # A failed candidate must not keep its place in the queue: everyone behind it
        # would wait for ever. What cannot be deleted is left to the session (R11).
        with contextlib.suppress(Exception):
            self._leaving.delete_abandoned()
        if self._leaving.abandoned:
            self._leaving.abandon_all()
