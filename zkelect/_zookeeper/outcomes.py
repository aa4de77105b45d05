"""What the ZooKeeper boundary tells the layers above it, without kazoo.

The states of a session, the parts of a node's stat zkelect reads, a listing of an
election path, and the few failures a request can end in. Every kazoo exception is turned
into one of these (or a public ``ZkElectError``) by ``requests.translate``, so code that
only handles outcomes (the fenced transaction, a receiver of tokens) never imports kazoo.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BadVersion",
    "ConnectionState",
    "EventWatcher",
    "Listing",
    "NoNode",
    "NodeExists",
    "NodeStat",
    "Retryable",
    "SessionGone",
    "TransactionFailed",
    "WatchEvent",
    "Watcher",
]

#: A watch as zkelect sets it: called once, with no argument, when the node changes.
Watcher = Callable[[], None]


class WatchEvent(enum.Enum):
    """What fired a watch, for the watches that must tell a deletion from a change."""

    CREATED = "created"
    DELETED = "deleted"
    CHANGED = "changed"  # the node's data was set
    CHILD = "child"  # a child was created or deleted
    OTHER = "other"  # anything else ZooKeeper may send a watch


#: A watch that is told what fired it (``WatchEvent``); called once.
EventWatcher = Callable[[WatchEvent], None]


class ConnectionState(str, enum.Enum):
    """The session as an election sees it."""

    CONNECTED = "connected"  # requests flow; the session is alive
    SUSPENDED = "suspended"  # connection lost; the session may or may not survive
    LOST = "lost"  # the session ended (expired or closed); its ephemeral nodes are gone


@dataclass(frozen=True)
class NodeStat:
    """The parts of a znode's Stat that zkelect uses."""

    czxid: int
    mzxid: int
    version: int
    ephemeral_owner: int
    ctime: int = 0  # milliseconds since the epoch (0 where a create's answer has none)


@dataclass(frozen=True)
class Listing:
    """An election path's children as read, and ``pzxid``: the zxid of the last child
    created or deleted before the read, so the listing shows ZooKeeper's state as of it."""

    names: list[str]
    pzxid: int


class NoNode(Exception):
    """The node (or a parent) does not exist."""


class NodeExists(Exception):
    """The node already exists."""


class BadVersion(Exception):
    """A version check failed."""


class Retryable(Exception):
    """The request's outcome is unknown (connection loss or timeout); try again later."""


class SessionGone(Exception):
    """The session expired or the client was closed."""


class TransactionFailed(Exception):
    """Operation ``index`` of a transaction failed with ``error``; nothing was applied."""

    def __init__(self, index: int, op: str, error: BaseException) -> None:
        super().__init__(f"operation {index} ({op}) failed: {error!r}")
        self.index = index
        self.op = op
        self.error = error
