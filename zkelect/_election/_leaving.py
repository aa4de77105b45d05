"""Deleting our candidate nodes: on resign, on stop, on failure, and the ones a step could
not delete at once (``abandoned``: deleted first by the next step that reaches ZooKeeper,
or left to the session, which deletes them once connected again or closes)."""

from __future__ import annotations

import contextlib

from zkelect._election._joining import Joiner
from zkelect._election.ports import PendingPort, SessionPort
from zkelect._zookeeper.outcomes import ConnectionState, NoNode, Retryable, SessionGone
from zkelect.clock import Clock
from zkelect.errors import PermissionDeniedError, ZkElectError

__all__ = ["Leaving"]


class Leaving:
    """One candidacy's nodes still to delete; its fields belong to the candidacy's actor."""

    def __init__(self, session: SessionPort, path: str, timeout: float, clock: Clock) -> None:
        self._session = session
        self._path = path
        self._timeout = timeout
        self._clock = clock
        self.abandoned: list[str] = []  # our nodes still to delete (failed deletes)

    def send_delete(self, node: str) -> PendingPort:
        """Our node's delete (resign), sent now; its answer goes to ``deleted``."""
        return self._session.send_delete(self._child(node))

    def deleted(self, node: str, answer: PendingPort) -> None:
        """The answer of ``send_delete``: if ZooKeeper could not answer, the next step
        deletes the node. Raises PermissionDeniedError if we may not delete it."""
        try:
            with contextlib.suppress(NoNode):
                answer.result()
        except (Retryable, SessionGone):
            self.abandoned.append(node)  # the re-join step deletes it first

    def delete_abandoned(self) -> None:
        while self.abandoned:
            with contextlib.suppress(NoNode):
                self._session.delete(self._child(self.abandoned[0]))
            self.abandoned.pop(0)

    def delete_on_leaving(self, joiner: Joiner) -> None:
        """Delete our nodes for stop(); what cannot be deleted in time is left to the session
        (an owned one is closed, a shared one deletes them once it is connected again)."""
        deadline = self._clock() + self._timeout
        while self._session.state is ConnectionState.CONNECTED and self._clock() < deadline:
            try:
                self.delete_abandoned()
                if joiner.uncertain:
                    joiner.delete_uncertain()
                return
            except (Retryable, SessionGone):
                continue
            except PermissionDeniedError:
                raise
            except ZkElectError:
                break
        self.abandon_all()

    def abandon_all(self) -> None:
        """Leave the nodes still to delete to the session."""
        self._session.abandon([self._child(name) for name in self.abandoned])
        self.abandoned.clear()

    def cannot_delete(self, node: str, what: str, exc: PermissionDeniedError) -> ZkElectError:
        return PermissionDeniedError(
            f"cannot {what}: ZooKeeper refused to delete our candidate node {self._child(node)} "
            f"(this identity may create nodes in {self._path} but not delete them: DELETE is "
            "missing from the election path's ACL). The node stays, so this candidate keeps "
            f"its place and leads again if first; grant DELETE on {self._path} to the "
            f"candidates' identity (setAcl). ({exc})"
        )

    def _child(self, name: str) -> str:
        return f"{self._path}/{name}"
