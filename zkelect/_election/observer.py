"""Observing who leads an election path, with one watch, without being a candidate.

A plain candidate watches only its predecessor, so it is not told when someone else
becomes leader. Observing costs one more watch: a data watch on the current leader's
node (or, only while the path has no candidates, a children/exists watch to learn when
one appears). Every observer wakes when the leader changes: the price of observing,
paid only by those who ask for it.

The reading is reader.watch_leader's, with zkelect's own order: foreign children are
skipped as the candidates skip them (names that are not candidates, and persistent nodes
named like one; see docs/safety.md, "Hostile input").

``LeaderObserver`` holds no thread of its own: its owner calls ``refresh()`` from the
owner's actor, and the watches ask the owner (through ``post``) to call ``on_fired``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from zkelect._election.nodes import LeaderInfo, election_order
from zkelect._election.reader import watch_always, watch_leader
from zkelect._zookeeper.outcomes import ConnectionState, Retryable, SessionGone
from zkelect._zookeeper.session import Session
from zkelect.errors import ZkElectError

__all__ = ["UNSET", "LeaderObserver"]

log = logging.getLogger("zkelect")
UNSET = object()  # nothing observed yet


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
        snapshot = watch_leader(
            self._session, self._path, watch_always(rewatch), self._foreign, order=election_order
        )
        return None if snapshot.leader is None else LeaderInfo.of(snapshot.leader)
