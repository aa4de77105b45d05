"""Creating our candidate node (phase CREATING), and finding it again when the answer to a
create was lost (R1).

A create whose answer never came may still have landed: its node would then sit in the
queue with nobody owning it in our mind, blocking everyone behind it until the session
ends. So every create attempt names its node with a fresh GUID (``new_node_prefix``), and
until an answer is taken the attempt is *uncertain*: the next try looks for a node with
that prefix owned by our session (after a sync) before creating another.

The first join of a blocking ``start()`` is made on the caller's thread (``join_first``):
the caller waits for its own round trip instead of handing it to a pool thread and waiting
for that, and the candidacy's actor takes the answer (``Joiner.took_first``). A fresh
election path is created in the same multi as our node, which then needs no read: it is
the only child (the ``Listing`` is the multi's answer).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from zkelect._election.nodes import Contender, new_node_prefix, parse_node
from zkelect._election.ports import Children, SessionPort, TicketPort
from zkelect._zookeeper.outcomes import Listing, NodeStat, NoNode
from zkelect._zookeeper.requests import listing_of
from zkelect.errors import ZkElectError

__all__ = ["Created", "FirstJoin", "Joiner", "join_first"]

Created = tuple[str, NodeStat]  # our node's name (not its path) and stat


@dataclass(frozen=True)
class FirstJoin:
    """The first join attempt of a blocking ``start()``, made on the caller's thread: our
    node and the children it was created among, or what the attempt raised. ``guid`` names
    the attempt, so the node of a lost answer is found again (R1)."""

    guid: str
    created: Created | None
    children: Children
    error: BaseException | None = None


def join_first(session: SessionPort, path: str, data: bytes, priority: int = 0) -> FirstJoin:
    """Create our node now, on the calling thread (see the module docstring). The read of
    the children sent with the create is waited for too, so a refused read is reported by
    ``start()`` at once, as a refused create is."""
    guid = str(uuid.uuid4())
    try:
        prefix = new_node_prefix(guid, priority)
        outcome, listing = session.joins.join(path, f"{path}/{prefix}", data)
    except Exception as exc:  # handed to the actor, which sorts it out
        return FirstJoin(guid, None, None, exc)
    name = outcome.node_path.rsplit("/", 1)[1]
    created = (name, outcome.stat)
    if listing is None:  # made with its path: the only child, as of the multi's zxid
        return FirstJoin(guid, created, Listing([name], outcome.stat.czxid))
    try:
        return FirstJoin(guid, created, listing_of(listing.result()))
    except ZkElectError as exc:  # terminal (NoAuth): the node is ours all the same
        return FirstJoin(guid, created, None, exc)
    except Exception:  # the look reads again
        return FirstJoin(guid, created, None)


class Joiner:
    """One candidacy's create attempts; its fields belong to the candidacy's actor."""

    def __init__(
        self, session: SessionPort, path: str, data: bytes, timeout: float, priority: int = 0
    ) -> None:
        self._session = session
        self._path = path
        self._data = data
        self._timeout = timeout
        self._priority = priority  # in our nodes' names (switchover.py)
        self.guid: str | None = None  # the GUID of the attempt not yet answered
        self.uncertain = False  # a create of that attempt was sent: it may have landed
        self.ticket: TicketPort | None = None  # a create batched by start(wait=False)

    @property
    def in_flight(self) -> bool:
        return self.ticket is not None or self.uncertain

    def settled(self) -> None:
        """A node was adopted: no attempt is open any more."""
        self.guid = None
        self.uncertain = False

    def reset(self) -> None:
        """The session was lost: its creates are no longer ours to find (R2)."""
        self.settled()
        self.ticket = None

    def first(self) -> FirstJoin:
        """``join_first`` for this candidacy: safe on any thread (it reads only what was
        fixed when the Joiner was made, and answers through a new ``FirstJoin``)."""
        return join_first(self._session, self._path, self._data, self._priority)

    def took_first(self, attempt: FirstJoin) -> Created | None:
        """Take the first join made on the caller's thread: its node, or None (the attempt
        stays open: a lost answer's node is found again by its GUID, and only if our
        current session owns it, R1). The node of a session lost meanwhile is not ours (R2):
        nothing is taken."""
        self.guid, self.uncertain = attempt.guid, True  # until adopted
        created = attempt.created
        if created is not None and created[1].ephemeral_owner != self._session.session_id:
            self.reset()  # made by a session lost since: it goes with it (R2)
            return None
        return created

    def create(self) -> Created:
        """Our node: the batched create's answer, the node of an uncertain create found
        again, or a new one (R1). Raises what the request raised (the attempt stays open)."""
        taken = self.take()
        if taken is not None:
            return taken
        session_id = self._session.session_id
        if self.guid is None:
            self.guid = str(uuid.uuid4())
            self.uncertain = False
        prefix = new_node_prefix(self.guid, self._priority)
        if self.uncertain:
            found = self.find_own(prefix, session_id)
            if found is not None:
                return found
        self.uncertain = True
        created, stat = self._session.create_candidate(self._child(prefix), self._data)
        return created.rsplit("/", 1)[1], stat

    def send(self, answered: Callable[[str, TicketPort, Children], None]) -> None:
        """Hand a create to the session's batcher (``start(wait=False)``); ``answered`` is
        called on kazoo's thread with the children known or read ahead: none to read if the
        batch created the election path too (nothing can precede us), else read the moment
        the create is answered (so the read sees our node)."""
        guid = str(uuid.uuid4())
        self.guid = guid
        self.uncertain = True  # R1: a lost reply is found again by its prefix
        ticket = self._session.joins.submit(
            self._path, self._child(new_node_prefix(guid, self._priority)), self._data
        )
        slots = self._session.join_slots

        def on_answer() -> None:
            slots.release()
            children: Children = None
            with contextlib.suppress(Exception):
                outcome = ticket.result(0)
                if outcome.first:  # as of its creation, our node was the only one
                    name = outcome.node_path.rsplit("/", 1)[1]
                    children = Listing([name], outcome.stat.czxid)
                else:
                    children = self._session.send_listing(self._path)
            answered(guid, ticket, children)

        self.ticket = ticket
        ticket.when_done(on_answer)

    def owns(self, guid: str, ticket: TicketPort) -> bool:
        """Whether a batched answer is still the one we wait for (not taken by another
        step, nor reset by a lost session)."""
        return ticket is self.ticket and guid == self.guid

    def take(self) -> Created | None:
        """The answer of the batched create (waiting for it if need be); None if none is in
        flight. Raises what the create raised (the attempt stays uncertain, so a retry finds
        the node by its prefix if it did land)."""
        ticket, self.ticket = self.ticket, None
        if ticket is None:
            return None
        outcome = ticket.result(self._timeout)
        return outcome.node_path.rsplit("/", 1)[1], outcome.stat

    def find_own(self, prefix: str, session_id: int | None) -> Created | None:
        """Our node of an uncertain create (R1). Looked for after a sync: the member we are
        connected to now may not have applied that create yet, and a node we miss would be
        an orphan ahead of the one we create instead."""
        try:
            self._session.sync()
            children = self._session.children(self._path)
        except NoNode:
            return None
        for name in children:
            if name.startswith(prefix):
                stat = self._session.exists(self._child(name))
                if stat is not None and stat.ephemeral_owner == session_id:
                    return name, stat
        return None

    @staticmethod
    def orphans(node: str, ahead: list[Contender]) -> list[str]:
        """Nodes ahead of ``node`` that carry its GUID: made by our own create attempt."""
        own = parse_node(node)
        if own is None or own.guid is None:
            return []
        return [other.name for other in ahead if other.guid == own.guid]

    def delete_uncertain(self) -> None:
        """Delete the node of an uncertain create, if it landed (on leaving)."""
        if self.guid is None:
            return
        found = self.find_own(new_node_prefix(self.guid, self._priority), self._session.session_id)
        if found is not None:
            with contextlib.suppress(NoNode):
                self._session.delete(self._child(found[0]))
        self.uncertain = False
        self.guid = None

    def _child(self, name: str) -> str:
        return f"{self._path}/{name}"
