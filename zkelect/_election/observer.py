"""Observing who leads an election path, with one watch, without being a candidate.

A plain candidate watches only its predecessor, so it is not told when someone else
becomes leader. Observing costs one more watch: a data watch on the current leader's
node (or, only while the path has no candidates, a children/exists watch to learn when
one appears). Every observer wakes when the leader changes: the price of observing,
paid only by those who ask for it.

Foreign children are skipped as the candidates skip them: names that are not candidates,
and persistent nodes named like one (found when the leader's node is read: no session owns
it, so it is not a candidate; see docs/safety.md, "Hostile input").

``LeaderObserver`` holds no thread of its own: its owner calls ``refresh()`` from the
owner's actor, and the watches ask the owner (through ``post``) to call ``on_fired``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from zkelect._election.nodes import LeaderInfo, election_order, parse_node
from zkelect._zookeeper.session import ConnectionState, NoNode, Retryable, Session, SessionGone
from zkelect.errors import ZkElectError

__all__ = ["UNSET", "LeaderObserver"]

log = logging.getLogger("zkelect")
UNSET = object()  # nothing observed yet
_MAX_PASSES = 16


class LeaderObserver:
    """Tracks the leader of ``path``; ``deliver(info)`` is called on every change."""

    def __init__(
        self,
        session: Session,
        path: str,
        post: Callable[[int], None],
        deliver: Callable[[LeaderInfo | None], None],
        retry_delay: float = 0.2,
    ) -> None:
        self._session = session
        self._path = path
        self._post = post
        self._deliver = deliver
        self._retry_delay = retry_delay
        self._generation = 0
        self._foreign: set[str] = set()  # persistent children named like candidates
        self.last: object = UNSET  # the last LeaderInfo | None delivered

    def invalidate(self) -> None:
        """Forget the watches set so far (their session ended)."""
        self._generation += 1

    def on_fired(self, generation: int) -> None:
        """A watch we set fired (or a retry came due): look again if it is current."""
        if generation == self._generation:
            self.refresh()

    def refresh(self) -> None:
        """Read the leader now, leave one watch, and deliver it if it changed."""
        if self._session.state is not ConnectionState.CONNECTED:
            return  # the owner calls refresh() again on reconnection
        self._generation += 1
        generation = self._generation

        def rewatch() -> None:
            self._post(generation)

        try:
            info = self._read_leader(rewatch)
        except (Retryable, SessionGone):
            timers = self._session.timers
            if timers is not None:
                timers.call_later(self._retry_delay, rewatch)
            return
        except ZkElectError as exc:
            log.warning("zkelect %s: cannot observe the leader: %s", self._path, exc)
            return
        if info != self.last:
            self.last = info
            self._deliver(info)

    def _read_leader(self, rewatch: Callable[[], None]) -> LeaderInfo | None:
        for _ in range(_MAX_PASSES):
            try:
                children = self._session.children(self._path)
            except NoNode:
                if self._session.exists(self._path, watch=rewatch) is None:
                    return None
                continue  # created meanwhile
            order = election_order(children)
            if self._foreign:
                self._foreign.intersection_update(children)
                order = [node for node in order if node.name not in self._foreign]
            if not order:
                # Nobody to watch: wait for the first candidate with a children watch.
                children = self._session.children(self._path, watch=rewatch)
                if any(parse_node(name) and name not in self._foreign for name in children):
                    continue
                return None
            try:
                data, stat = self._session.get(f"{self._path}/{order[0].name}", watch=rewatch)
            except NoNode:
                continue  # the leader left between the two reads
            if stat.ephemeral_owner == 0:
                # Named like a candidate, but persistent: not one (its watch may wake us
                # once more, for nothing).
                self._foreign.add(order[0].name)
                continue
            return LeaderInfo.from_node(order[0], data, stat.czxid, stat.ephemeral_owner)
        raise Retryable("the election changed too fast to observe")
