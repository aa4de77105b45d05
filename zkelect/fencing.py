"""Fencing: the epoch that every leader-only write carries (R8).

Leadership is advisory: a process paused past its session timeout can wake up still
believing it leads. ``Leadership`` is the handle a leader holds; its ``token`` travels
with every write, and ``transaction()`` builds ZooKeeper writes that commit only while
our candidate node exists, so a deposed leader's late write cannot land there.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigurationError, LeadershipLostError
from .session import BadVersion, NoNode, Transaction, TransactionFailed

if TYPE_CHECKING:
    from .session import Session

__all__ = ["FencedTransaction", "FencingToken", "Leadership"]

_TOKEN_VERSION = "zk1"


@dataclass(frozen=True)
class FencingToken:
    """Who led, when: ``epoch`` (czxid of the leader's node) orders leaders of a path.

    Tokens compare by epoch: a higher epoch belongs to a later leader, always.
    """

    epoch: int
    path: str
    candidate_id: str
    session_id: int

    def __lt__(self, other: FencingToken) -> bool:
        return self.epoch < other.epoch

    def __le__(self, other: FencingToken) -> bool:
        return self.epoch <= other.epoch

    def __gt__(self, other: FencingToken) -> bool:
        return self.epoch > other.epoch

    def __ge__(self, other: FencingToken) -> bool:
        return self.epoch >= other.epoch

    def __str__(self) -> str:
        """Compact form for headers and environment variables; see ``parse``."""
        ident = base64.urlsafe_b64encode(self.candidate_id.encode()).decode().rstrip("=")
        return f"{_TOKEN_VERSION}:{self.epoch}:{self.session_id:x}:{ident}:{self.path}"

    @classmethod
    def parse(cls, text: str) -> FencingToken:
        """The inverse of ``str(token)``; ConfigurationError on anything malformed."""
        parts = text.split(":", 4) if isinstance(text, str) else []
        if len(parts) != 5 or parts[0] != _TOKEN_VERSION:
            raise ConfigurationError(
                f"not a zkelect fencing token (expected 'zk1:<epoch>:<session>:<id>:<path>'): "
                f"{text!r}"
            )
        _, epoch, session, ident, path = parts
        try:
            padded = ident + "=" * (-len(ident) % 4)
            candidate = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            token = cls(int(epoch), path, candidate, int(session, 16))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise ConfigurationError(f"malformed fencing token: {text!r}") from None
        if token.epoch <= 0 or token.session_id < 0 or not path.startswith("/"):
            raise ConfigurationError(f"malformed fencing token: {text!r}")
        return token


class Leadership:
    """The handle a leader holds while it leads. Created by the election only.

    ``lost`` is set the moment leadership is lost, revoked or given up, before any
    callback runs; leader-only work should watch it (or call ``check()``) and stop.
    """

    def __init__(
        self,
        token: FencingToken,
        node_path: str,
        node_version: int,
        session: Session,
        revoke: Callable[[str], None],
    ) -> None:
        self.token = token
        self.node_path = node_path
        self._node_version = node_version
        self._session = session
        self._revoke = revoke
        self.lost = threading.Event()
        self.reason: str | None = None

    @property
    def epoch(self) -> int:
        return self.token.epoch

    def _mark_lost(self, reason: str) -> None:
        self.reason = reason
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
        """Raise LeadershipLostError unless ``is_valid()``."""
        if self.lost.is_set():
            raise LeadershipLostError(
                f"leadership of {self.token.path} (epoch {self.epoch:#x}) was lost: {self.reason}"
            )
        if self._session.lease_remaining() <= 0:
            raise LeadershipLostError(
                f"the lease on {self.token.path} (epoch {self.epoch:#x}) ran out: no answer from "
                "ZooKeeper recently enough to be sure the session is alive"
            )

    def transaction(self) -> FencedTransaction:
        """A multi-op transaction that commits only while our candidate node exists."""
        return FencedTransaction(self)

    def __repr__(self) -> str:
        state = f"lost: {self.reason}" if self.lost.is_set() else "leading"
        return f"<Leadership {self.token.path} epoch={self.epoch:#x} {state}>"


class FencedTransaction:
    """Operations committed together with a check that the leader's node still exists.

    A failed fence raises LeadershipLostError and revokes local leadership.
    """

    def __init__(self, leadership: Leadership) -> None:
        self._leadership = leadership
        self._txn: Transaction = leadership._session.transaction()
        self._txn.check(leadership.node_path, leadership._node_version)

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
        """Apply every operation, or none; results exclude the fence check."""
        lead = self._leadership
        lead.check()
        try:
            return self._txn.commit()[1:]
        except TransactionFailed as failed:
            if failed.index == 0 and isinstance(failed.error, (NoNode, BadVersion)):
                lead._revoke("fence_failed")
                raise LeadershipLostError(
                    f"fenced write refused: the leader node {lead.node_path} is gone, so "
                    f"epoch {lead.epoch:#x} no longer leads {lead.token.path}"
                ) from None
            raise failed.error from None
