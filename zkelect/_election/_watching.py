"""Our one watch (R3): on the immediate predecessor while waiting, on our own node while
leading (so a forced resign is seen at once). Nobody watches the children list, so a
leader change wakes one candidate, not all.

Every watch set gets a new *generation*; a watch that fires after we moved on from it
(a predecessor we no longer wait on, our own node after resigning) is stale, and does
nothing: not even a read, which would land on the servers just as a successor needs them.

While waiting we also keep what decides whether the predecessor's deletion notice alone
elects us (R13, docs/safety.md "Leading on the deletion notice"): ``ahead_first`` is set
when a look showed the predecessor first, or when the predecessor's *leader marker*
(``zkelect-leader-<guid>-<sequence>``, created by a leader once elected) was found to exist
and be owned by the predecessor's session. Until the marker appears we hold one ``exists``
watch on it, dropped (removeWatches) if we move on before it appears.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from zkelect._election.messages import (
    MarkerSeen,
    Message,
    OwnNodeAnswered,
    PredecessorFired,
    PredecessorGone,
)
from zkelect._election.nodes import Contender, leader_marker
from zkelect._election.ports import PendingPort, SessionPort
from zkelect._zookeeper.outcomes import NodeStat, NoNode, WatchEvent
from zkelect._zookeeper.requests import stat_of
from zkelect.errors import PermissionDeniedError

__all__ = ["Watches"]

log = logging.getLogger("zkelect")


class Watches:
    """One candidacy's watch and what it learnt about the election's foreign nodes."""

    def __init__(self, session: SessionPort, path: str) -> None:
        self._session = session
        self._path = path
        self.post: Callable[[Message], None] = lambda message: None  # the actor's, at start
        self.run_here: Callable[[Message], None] = lambda message: None  # likewise
        self.generation = 0
        self.watched: str | None = None  # the node our current watch is on
        #: The predecessor we watch is known to have been first (R13): its deletion
        #: notice alone elects us. Only with a data watch on it (not the children fallback).
        self.ahead_first = False
        #: The zxid of a state in which the predecessor was known first (its marker's
        #: creation); 0 when a look showed it (that look's zxid then says it).
        self.first_zxid = 0
        self._owner = 0  # the session owning the predecessor's node (the marker's too)
        self._marker_pending: str | None = None  # an exists watch on a marker not yet seen
        self._by_data = False  # the last watch set by ``stat`` is a data watch (no fallback)
        self._foreign: set[str] = set()  # persistent children named like candidates: not ones
        self._unreadable: set[str] = set()  # nodes we may not read (warned about once)

    def forget(self) -> None:
        """Move on from the current watch: when it fires, it does nothing."""
        self.watched = None
        self._move_on()

    def _move_on(self) -> None:
        self.generation += 1
        self.ahead_first = False
        self.first_zxid = 0
        if self._marker_pending is not None:
            # A marker that never appeared: its watch would outlive its use (R3).
            self._session.forget_watch(self._marker_pending)
            self._marker_pending = None

    def on_predecessor(self, name: str, first: bool) -> bool:
        """Leave our one watch on ``name`` (which the look showed ``first`` or not); False if
        it is gone or not a candidate."""
        if self.watched == name:
            self.ahead_first = self.ahead_first or (first and self._by_data)
            return True
        self._move_on()
        generation = self.generation
        self.watched = None  # a watch set before is stale now (its generation is old)
        stat = self.stat(self._child(name), generation, self._predecessor_fired(generation))
        if stat is None:
            return False
        if stat.ephemeral_owner == 0:
            # Named like a candidate but persistent: no session owns it, so it would block
            # the election for ever. Not a candidate (its watch is stale: generation).
            log.warning(
                "zkelect %s: ignoring %s: a persistent node is not a candidate", self._path, name
            )
            self._foreign.add(name)
            return False
        self.watched = name
        self._owner = stat.ephemeral_owner
        if self._by_data:
            self.ahead_first = first
            if not first:
                self._watch_marker(name, generation)
        return True

    def marker_seen(self, generation: int, owner: int, czxid: int) -> None:
        """The predecessor's leader marker exists, owned by session ``owner`` (R13)."""
        if generation != self.generation or self.watched is None:
            return
        self._marker_pending = None
        if owner == self._owner:
            self.ahead_first = True
            self.first_zxid = czxid

    def on_own_node(self, node: str) -> None:
        """The leader's one watch is on its own node, so a forced resign is seen at once.

        Sent without waiting: the flip to leader (and on_elected) need not wait a round
        trip for it; if the node is already gone, the answer's step revokes.
        """
        if self.watched == node:
            return
        self._move_on()
        generation = self.generation
        pending = self._session.send_get(self._child(node), watch=self.fired(generation))
        self.watched = node

        def answered() -> None:
            if not pending.succeeded():  # the usual answer needs no step of its own
                self.post(OwnNodeAnswered(generation, pending))

        pending.when_done(answered)

    def fired(self, generation: int) -> Callable[[], None]:
        """A watch callback for watch ``generation`` (our own node, or the children list).

        On kazoo's callback thread it sends the re-read of the children right away, so the
        round trip overlaps the hop to a pool thread (the handover's critical path). A watch
        we already moved on from sends nothing (see the module docstring).
        """

        def on_fired() -> None:
            if generation == self.generation:
                self.post(PredecessorFired(generation, self._session.send_listing(self._path)))

        return on_fired

    def _predecessor_fired(self, generation: int) -> Callable[[WatchEvent], None]:
        """The data watch on our predecessor: its deletion is handled where it is told (on
        kazoo's callback thread, if our actor is idle: no hop before the flip, R13); any
        other event (its data set) is a reason to look again."""
        on_other = self.fired(generation)

        def on_event(event: WatchEvent) -> None:
            if generation != self.generation:
                return
            if event is WatchEvent.DELETED:
                self.run_here(PredecessorGone(generation))
            else:
                on_other()

        return on_event

    def _watch_marker(self, name: str, generation: int) -> None:
        """Hold an ``exists`` watch on the predecessor's leader marker (R13): told when it
        is created, its owner is read (an ``exists`` answer) before it counts."""
        marker = leader_marker(name)
        if marker is None:
            return  # not a zkelect-made name (a Curator or hand-made node): no marker
        path = self._child(marker)
        self._marker_pending = path

        def check(pending: PendingPort) -> None:
            if generation == self.generation and pending.succeeded():
                stat = stat_of(pending.result())
                if stat is not None:
                    self.post(MarkerSeen(generation, stat.ephemeral_owner, stat.czxid))

        def on_event(event: WatchEvent) -> None:
            if generation == self.generation and event is WatchEvent.CREATED:
                created = self._session.send_exists(path)
                created.when_done(lambda: check(created))

        pending = self._session.send_watching_exists(path, on_event)
        pending.when_done(lambda: check(pending))

    def stat(
        self, path: str, generation: int, on_event: Callable[[WatchEvent], None]
    ) -> NodeStat | None:
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
        self._by_data = False
        try:
            _, stat = self._session.watching_get(path, on_event)
        except NoNode:
            return None
        except PermissionDeniedError:
            if path not in self._unreadable:
                self._unreadable.add(path)
                log.warning(
                    "zkelect %s: may not read %s (its ACL lacks READ for us): watching the "
                    "election path's children instead; grant the candidates READ on each "
                    "other's nodes to be woken only by a predecessor",
                    self._path,
                    path,
                )
            self._session.children(self._path, watch=self.fired(generation))
            return self._session.exists(path)  # a stat needs no permission
        self._by_data = True
        return stat

    def skip_foreign(self, order: list[Contender], children: list[str]) -> list[Contender]:
        """``order`` without the persistent nodes found named like candidates."""
        if not self._foreign:
            return order
        self._foreign.intersection_update(children)  # forget the ones deleted meanwhile
        return [node for node in order if node.name not in self._foreign]

    def _child(self, name: str) -> str:
        return f"{self._path}/{name}"
