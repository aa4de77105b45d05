"""Our leader marker (R13): a child ``zkelect-leader-<guid>-<sequence>`` left beside our node
once we lead, which tells the candidate behind us that our node was first, so that our
node's deletion notice alone elects it (docs/safety.md, "Leading on the deletion notice").

The marker is ephemeral (it goes with our session) and sent without waiting: it is a hint
to the next in line, never on the handover's path. It is deleted once our node is, and a
marker that cannot be made or deleted costs only speed: the next in line then looks again.
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

    def leave(self, node: str) -> None:
        """We lead with ``node``: tell the next in line (once per node)."""
        name = leader_marker(node)
        if name is None or name == self.name:
            return
        self.remove()
        self.name = name
        self._session.send_create(f"{self._path}/{name}", ephemeral=True)

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
