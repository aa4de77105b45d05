"""Our one watch (R3): on the immediate predecessor while waiting, on our own node while
leading (so a forced resign is seen at once). Nobody watches the children list, so a
leader change wakes one candidate, not all.

Every watch set gets a new *generation*; a watch that fires after we moved on from it
(a predecessor we no longer wait on, our own node after resigning) is stale, and does
nothing: not even a read, which would land on the servers just as a successor needs them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from zkelect._election.messages import Message, OwnNodeAnswered, PredecessorFired
from zkelect._election.nodes import Contender
from zkelect._election.ports import SessionPort
from zkelect._zookeeper.outcomes import NodeStat, NoNode
from zkelect.errors import PermissionDeniedError

__all__ = ["Watches"]

log = logging.getLogger("zkelect")


class Watches:
    """One candidacy's watch and what it learnt about the election's foreign nodes."""

    def __init__(self, session: SessionPort, path: str) -> None:
        self._session = session
        self._path = path
        self.post: Callable[[Message], None] = lambda message: None  # the actor's, at start
        self.generation = 0
        self.watched: str | None = None  # the node our current watch is on
        self._foreign: set[str] = set()  # persistent children named like candidates: not ones
        self._unreadable: set[str] = set()  # nodes we may not read (warned about once)

    def forget(self) -> None:
        """Move on from the current watch: when it fires, it does nothing."""
        self.watched = None
        self.generation += 1

    def on_predecessor(self, name: str) -> bool:
        """Leave our one watch on ``name``; False if it is gone or not a candidate."""
        if self.watched == name:
            return True
        self.generation += 1
        generation = self.generation
        self.watched = None  # a watch set before is stale now (its generation is old)
        stat = self.stat(self._child(name), self.fired(generation))
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
        return True

    def on_own_node(self, node: str) -> None:
        """The leader's one watch is on its own node, so a forced resign is seen at once.

        Sent without waiting: the flip to leader (and on_elected) need not wait a round
        trip for it; if the node is already gone, the answer's step revokes.
        """
        if self.watched == node:
            return
        self.generation += 1
        generation = self.generation
        pending = self._session.send_get(self._child(node), watch=self.fired(generation))
        self.watched = node

        def answered() -> None:
            if not pending.succeeded():  # the usual answer needs no step of its own
                self.post(OwnNodeAnswered(generation, pending))

        pending.when_done(answered)

    def fired(self, generation: int) -> Callable[[], None]:
        """A watch callback for watch ``generation`` (our predecessor's node, or our own).

        On kazoo's callback thread it sends the re-read of the children right away, so the
        round trip overlaps the hop to a pool thread (the handover's critical path). A watch
        we already moved on from sends nothing (see the module docstring).
        """

        def on_fired() -> None:
            if generation == self.generation:
                self.post(PredecessorFired(generation, self._session.send_listing(self._path)))

        return on_fired

    def stat(self, path: str, fired: Callable[[], None]) -> NodeStat | None:
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
                    self._path,
                    path,
                )
            self._session.children(self._path, watch=fired)
            return self._session.exists(path)  # a stat needs no permission
        return stat

    def skip_foreign(self, order: list[Contender], children: list[str]) -> list[Contender]:
        """``order`` without the persistent nodes found named like candidates."""
        if not self._foreign:
            return order
        self._foreign.intersection_update(children)  # forget the ones deleted meanwhile
        return [node for node in order if node.name not in self._foreign]

    def _child(self, name: str) -> str:
        return f"{self._path}/{name}"
