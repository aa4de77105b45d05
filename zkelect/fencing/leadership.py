"""Fencing: the epoch that every leader-only write carries (R8).

Leadership is advisory: a process paused past its session timeout can wake up still
believing it leads, and write once before it notices. The defence is a token checked
where the write lands:

* ``FencingToken`` (token.py): who led, with which epoch (the czxid of the leader's node).
* ``Leadership``: the handle a leader holds, with its token and the local lease check.
* ``Leadership.transaction()``: ZooKeeper writes that commit only while our candidate
  node exists (a multi-op whose first operation checks it, at any data version: someone
  overwriting the node's data does not depose us). The *server* decides, not this
  process's belief, so a deposed leader's late write cannot land.
* For other stores, see stores.py (SQL) and guard.py (HTTP receivers).

No kazoo here: the failures of a transaction are the boundary's kazoo-free outcomes, and
the session is only a type.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from zkelect._zookeeper.outcomes import (
    BadVersion,
    NoNode,
    Retryable,
    SessionGone,
    TransactionFailed,
)
from zkelect.errors import (
    ConnectionFailedError,
    LeadershipLostError,
    StaleEpochError,
    WriteFailedError,
    ZkElectError,
)
from zkelect.fencing.token import FencingToken, describe_epoch

if TYPE_CHECKING:
    from zkelect._zookeeper.requests import Pending, Transaction
    from zkelect._zookeeper.session import Session

# FencingToken and describe_epoch are re-exported for code that imports them from here.
__all__ = ["COMMIT_FAILURES", "FencedTransaction", "FencingToken", "Leadership", "describe_epoch"]

#: How a fenced commit's request fails (``FencedTransaction.results``).
COMMIT_FAILURES = (TransactionFailed, SessionGone, Retryable)


class Leadership:
    """The handle a leader holds while it leads. Created by the election only.

    ``lost`` is set the moment leadership is lost, revoked or given up, before any
    callback runs; leader-only work should watch it (or call ``check()``) and stop.
    """

    def __init__(
        self,
        token: FencingToken,
        node_path: str,
        session: Session,
        revoke: Callable[[str], None],
        current_epoch: Callable[[], int | None] = lambda: None,
        record_write: Callable[[str], None] = lambda result: None,
        node_gone: Callable[[str], bool | None] = lambda path: None,
        *,
        granted_zxid: int = 0,
    ) -> None:
        self.token = token
        #: The zxid of the ZooKeeper state in which this candidate's node was first (the
        #: election path's pzxid as read when it was elected), or, elected on its
        #: predecessor's deletion notice (R13), of the state in which that predecessor was
        #: known first: the creation of its leader marker, or the look that showed it first.
        #: A candidate that learns late that it was first still gets an old enough value.
        self.granted_zxid = granted_zxid
        self.node_path = node_path
        self._session = session
        self._revoke = revoke
        self._current_epoch = current_epoch
        self._record_write = record_write
        self._node_gone = node_gone
        self.lost = threading.Event()
        self.reason: str | None = None
        #: Once lost: the moment (on the election's clock, ``time.monotonic`` by default) by
        #: which leader-only work must have stopped, because from then on the servers could
        #: have elected a successor. Already past for a deleted node, a lost session or a
        #: resign; the end of the lease's margin for ``lease_expired`` and ``suspended``
        #: (zkelect run SIGKILLs the child by then, whatever --grace says). None while leading.
        self.stop_by: float | None = None

    @property
    def epoch(self) -> int:
        return self.token.epoch

    def _mark_lost(self, reason: str, stop_by: float) -> None:
        self.reason = reason
        self.stop_by = stop_by
        self.lost.set()

    def lease_remaining(self) -> float:
        """Seconds this leader may still assume it leads (0 once lost)."""
        if self.lost.is_set():
            return 0.0
        return self._session.lease_remaining()

    def is_valid(self) -> bool:
        """Still leader, and the local lease has not run out."""
        return not self.lost.is_set() and self._session.lease_remaining() > 0

    def check(self) -> None:
        """Raise LeadershipLostError unless ``is_valid()``. A local check only: a pause
        between it and a write can still let a stale write through; fence the write."""
        path, epoch = self.token.path, describe_epoch(self.epoch)
        if self.lost.is_set():
            raise LeadershipLostError(
                f"leadership of {path} (epoch {epoch}) was lost: {self.reason}"
            )
        if self._session.lease_remaining() <= 0:
            raise LeadershipLostError(
                f"the lease on {path} (epoch {epoch}) ran out: no answer from ZooKeeper "
                "recently enough to be sure the session is alive"
            )

    def transaction(self) -> FencedTransaction:
        """A multi-op transaction that commits only while our candidate node exists."""
        return FencedTransaction(self)

    def set_data(self, path: str, value: bytes, version: int = -1) -> None:
        """Fenced ``set``: applied only while this leadership holds."""
        self.transaction().set_data(path, value, version).commit()

    def create(
        self, path: str, value: bytes = b"", *, ephemeral: bool = False, sequence: bool = False
    ) -> str:
        """Fenced ``create``; returns the created path (with its sequence, if any)."""
        results = self.transaction().create(path, value, ephemeral=ephemeral, sequence=sequence)
        return str(results.commit()[0])

    def delete(self, path: str, version: int = -1) -> None:
        """Fenced ``delete``: applied only while this leadership holds."""
        self.transaction().delete(path, version).commit()

    def __repr__(self) -> str:
        state = f"lost: {self.reason}" if self.lost.is_set() else "leading"
        return f"<Leadership {self.token.path} epoch={describe_epoch(self.epoch)} {state}>"


class FencedTransaction:
    """Operations committed together with a check that the leader's node still exists.

    The server decides: ``commit()`` does not consult this process's belief, it sends
    the check with the writes. A failed fence raises StaleEpochError (naming our epoch
    and the current leader's) and revokes local leadership.

    The check is on the node's existence (version -1), not on its data version: the node's
    name carries our random GUID, so while a node of that name exists it is ours, and an
    operator (or anyone with WRITE) overwriting its data must not depose a leader that
    still leads for every other candidate.
    """

    def __init__(self, leadership: Leadership) -> None:
        self._leadership = leadership
        self._txn: Transaction = leadership._session.transaction()
        self._txn.check(leadership.node_path, -1)

    def create(
        self, path: str, value: bytes = b"", *, ephemeral: bool = False, sequence: bool = False
    ) -> FencedTransaction:
        self._txn.create(path, value, ephemeral=ephemeral, sequence=sequence)
        return self

    def set_data(self, path: str, value: bytes, version: int = -1) -> FencedTransaction:
        self._txn.set_data(path, value, version)
        return self

    def delete(self, path: str, version: int = -1) -> FencedTransaction:
        self._txn.delete(path, version)
        return self

    def check(self, path: str, version: int) -> FencedTransaction:
        self._txn.check(path, version)
        return self

    def commit(self) -> list[object]:
        """Apply every operation, or none; results exclude the fence check.

        Raises StaleEpochError (fence failed: a newer leader exists or our node is gone),
        LeadershipLostError (our session ended), ConnectionFailedError (no answer: the
        outcome is unknown; check before retrying), or the failing operation's error.
        """
        pending = self.send()
        try:
            return self.results(pending)
        except COMMIT_FAILURES as exc:
            raise self.failure(exc) from None

    def send(self) -> Pending:
        """The commit, sent now (``commit()`` in two halves, for an event loop)."""
        return self._txn.send()

    def results(self, pending: Pending) -> list[object]:
        """The results of ``send``'s commit, recorded as accepted; raises one of
        ``COMMIT_FAILURES`` (hand it to ``failure``) if it did not apply."""
        results = self._txn.results(pending)[1:]
        self._leadership._record_write("accepted")
        return results

    def failure(self, exc: BaseException) -> ZkElectError:
        """What a commit that failed with ``exc`` (one of ``COMMIT_FAILURES``) raises. May
        block for up to the request timeout: it reads who leads now, or whether our node is
        gone; ``lost`` is set first when the failure says we were deposed."""
        lead = self._leadership
        if isinstance(exc, TransactionFailed):
            if exc.index == 0 and isinstance(exc.error, (NoNode, BadVersion)):
                return self._rejected("fence_failed", "its candidate node is gone")
            lead._record_write("rejected")
            if isinstance(exc.error, ZkElectError):
                return exc.error
            return WriteFailedError(
                f"fenced write to {lead.token.path}: operation {exc.index} ({exc.op}) "
                f"failed with {type(exc.error).__name__}; nothing was applied"
            )
        if isinstance(exc, SessionGone):
            return self._rejected("session_lost", "its ZooKeeper session ended")
        # Retryable: the connection dropped with the write in flight. If our node is gone, we
        # no longer lead: the write was refused, or landed while we still led.
        if lead._node_gone(lead.node_path):
            return self._rejected(
                "session_lost",
                "its session ended while the write was in flight: the write was refused, "
                "or landed before that",
            )
        return ConnectionFailedError(
            f"no answer to a fenced write for {lead.token.path} within the request timeout:"
            " its outcome is unknown; read the data back before retrying"
        )

    def _rejected(self, reason: str, why: str) -> StaleEpochError:
        lead = self._leadership
        lead._record_write("rejected")
        lead._revoke(reason)
        current = lead._current_epoch()
        return StaleEpochError(
            f"fenced write refused: epoch {describe_epoch(lead.epoch)} no longer leads "
            f"{lead.token.path} ({why}); current leader epoch {describe_epoch(current)}. "
            "Stop leader-only work: this process was deposed.",
            resource=lead.token.path,
            epoch=lead.epoch,
            current_epoch=current,
        )
