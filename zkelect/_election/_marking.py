"""Our leader marker (R13): a child ``zkelect-leader-<guid>-<sequence>`` left beside our node
once we lead, which tells the candidate behind us that our node was first, so that our
node's deletion notice alone elects it (docs/safety.md, "Leading on the deletion notice").

The marker is ephemeral (it goes with our session) and sent without waiting: it is a hint
to the next in line, never on the handover's path. It is deleted once our node is, and a
marker that cannot be made or deleted costs only speed: the next in line then looks again.
Its ctime is also the one trace ZooKeeper keeps of when we were elected (``zkelect status``),
so a leader that waited leaves one even when nobody is behind it (candidacy._lead).
"""

from __future__ import annotations

from zkelect._election.nodes import leader_marker
from zkelect._election.ports import SessionPort

__all__ = ["Marker"]


class Marker:
    """One candidacy's leader marker; its fields belong to the candidacy's actor."""

    def __init__(self, session: SessionPort, path: str) -> None:
        self._session = session
        self._path = path
        self.name: str | None = None  # the marker we made (or sent) for our current node
        self._unsure = False  # the connection dropped since: our create may have been lost

    def leave(self, node: str) -> None:
        """We lead with ``node``: tell the next in line (once per node, and once more
        after a reconnection, in case the create was lost with the connection: the marker
        also records when we were elected, which ``zkelect status`` shows)."""
        name = leader_marker(node)
        if name is None or (name == self.name and not self._unsure):
            return
        if name != self.name:
            self.remove()
        self.name = name
        self._unsure = False
        # NodeExists, if the first create did land, is harmless: nobody waits for the answer.
        self._session.send_create(f"{self._path}/{name}", ephemeral=True)

    def unsure(self) -> None:
        """The same session is connected again: a create sent before may have been lost."""
        self._unsure = self.name is not None

    def remove(self) -> None:
        """Our node is gone (or going): so goes the marker (not waited for)."""
        if self.name is not None:
            self._session.send_delete(f"{self._path}/{self.name}")
            self.name = None

    def take(self) -> str | None:
        """The marker's name, to delete with our node (stop, failure); forgotten here."""
        name, self.name = self.name, None
        return name

    def lost(self) -> None:
        """The session ended: the servers deleted the marker with it."""
        self.name = None
        self._unsure = False
