"""Reading an election path: the one reader of who leads and who waits.

Every reader of an election goes through here: ``Election.leader()`` and ``candidates()``, the
observer behind ``Election.observe()`` and ``on_leader_change``, ``zkelect status``, ``watch``
and ``resign``, the exporter and the demo's queue. So they all see the same contenders in the
same order as the candidates do (nodes.serial_order), and skip the same children: names that
are no contender (for zkelect's own elections, ``nodes.election_order``: names that are not
zkelect's; for observers of any recipe, ``contenders.contender_order``), and persistent nodes
named like one (no session owns them, so no candidate counts them; docs/safety.md, "Hostile
input").

Three ways to read, by what the caller needs:

* :func:`read_election`: every contender with its node read, no watch (status, resign, the
  demo's queue, ``Election.candidates()``);
* :func:`read_leader`: the first contender whose node a session owns (``Election.leader()``);
* :func:`watch_leader`: the leader, leaving one watch that fires at its next change (the
  observer, ``zkelect watch``, the exporter): a data watch on the leader's node, or only while
  the path has no contender a children watch on it, or only while the path is missing an
  ``exists`` watch. A :class:`Watches` policy says whether each watch is wanted.

And :func:`read_elected`: when a leader was elected, as far as ZooKeeper keeps a trace of it
(its leader marker, R13; ``zkelect status``).

It talks to ZooKeeper through the boundary's Session (zkelect._zookeeper.session), or anything
with the same four reads (:class:`Reads`), and raises the session's errors: ``Retryable``,
``SessionGone``, ``PermissionDeniedError``; and :class:`ChangedTooFast`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from zkelect._election.contenders import contender_order
from zkelect._election.nodes import (
    LEADER_MARKER_PREFIX,
    Contender,
    ContenderKind,
    SequenceWrap,
    election_order,
    leader_marker,
    sequence_wrap,
)
from zkelect._election.switchover import REQUEST_NODE
from zkelect._zookeeper.outcomes import NodeStat, NoNode, Retryable, Watcher
from zkelect.errors import ZkElectError

__all__ = [
    "ChangedTooFast",
    "Elected",
    "Order",
    "Reads",
    "Snapshot",
    "WatchKind",
    "Watches",
    "read_elected",
    "read_election",
    "read_leader",
    "read_node",
    "watch_always",
    "watch_leader",
]

MAX_PASSES = 16  # re-reads while the election churns, before giving up

#: How a caller orders children: ``election_order`` (zkelect's own candidates only, what an
#: Election counts) or ``contender_order`` (any recipe's, what an observer of a path counts).
Order = Callable[[Iterable[str]], list[Contender]]
_T = TypeVar("_T")


class Reads(Protocol):
    """The reads the reader needs; zkelect._zookeeper.session.Session has them."""

    def children(self, path: str, watch: Watcher | None = None) -> list[str]: ...

    def get(self, path: str, watch: Watcher | None = None) -> tuple[bytes, NodeStat]: ...

    def exists(self, path: str, watch: Watcher | None = None) -> NodeStat | None: ...

    def get_many(self, paths: list[str]) -> list[tuple[bytes, NodeStat] | None]: ...


class ChangedTooFast(Retryable, ZkElectError):
    """The election changed between every listing and read of its leader: try again later."""


class WatchKind(str, enum.Enum):
    """The two kinds of watch, as ZooKeeper keeps them apart (``exists`` sets a data watch)."""

    DATA = "data"
    CHILD = "child"


class Watches(Protocol):
    """Which watches :func:`watch_leader` leaves, and what it tells of them."""

    def watcher(self, kind: WatchKind, znode: str) -> Watcher | None:
        """The watch to leave on ``znode`` with the next read, or None to read without one."""
        ...

    def unset(self, kind: WatchKind, znode: str) -> None:
        """The read that took ``watcher(kind, znode)`` failed (so may have set no watch), or
        the node it watches turned out not to be a contender."""
        ...


class _Always:
    """Leave every watch, with the same callback (the observer, ``zkelect watch``)."""

    def __init__(self, watch: Watcher) -> None:
        self._watch = watch

    def watcher(self, kind: WatchKind, znode: str) -> Watcher | None:
        return self._watch

    def unset(self, kind: WatchKind, znode: str) -> None:
        pass


def watch_always(watch: Watcher) -> Watches:
    """The policy that leaves every watch :func:`watch_leader` asks for, calling ``watch``."""
    return _Always(watch)


@dataclass(frozen=True)
class Snapshot:
    """An election path as read at one moment: its contenders in election order, leader first.

    ``exists``: whether the path exists. ``ignored`` (from :func:`read_election` only): the
    children that no candidate counts. From :func:`watch_leader` only the leader's node was
    read; the other contenders are parsed from their names (their ``data`` is None).
    """

    path: str
    exists: bool
    contenders: tuple[Contender, ...] = ()
    ignored: tuple[str, ...] = ()

    @property
    def leader(self) -> Contender | None:
        return self.contenders[0] if self.contenders else None

    @property
    def kinds(self) -> list[ContenderKind]:
        """The recipes whose contenders are here; more than one is a misconfiguration."""
        return sorted({c.kind for c in self.contenders}, key=lambda k: k.value)

    @property
    def sequence_wrap(self) -> SequenceWrap:
        """Whether the counter wrapped, and whom Curator's and kazoo's string order elects."""
        return sequence_wrap(self.contenders)


def read_node(contender: Contender, data: bytes, stat: NodeStat) -> Contender:
    """``contender`` with what a read of its node returned."""
    return contender._replace(
        data=data,
        epoch=stat.czxid,
        session_id=stat.ephemeral_owner,
        ctime_ms=stat.ctime,
        version=stat.version,
    )


def read_election(
    source: Reads, path: str, *, order: Order = contender_order, settle: bool = True
) -> Snapshot:
    """Every contender of ``path`` with its node read, in one pipelined burst, no watch.

    A node gone between the listing and its read is dropped. With ``settle``, a leader gone
    meanwhile makes it list again (so the first contender returned led when it was read), up
    to MAX_PASSES times, then :class:`ChangedTooFast`; without, it reads once (what
    ``Election.candidates()`` does).
    """
    for _ in range(MAX_PASSES):
        try:
            children = source.children(path)
        except NoNode:
            return Snapshot(path, exists=False)
        listed = order(children)
        got = source.get_many([f"{path}/{c.name}" for c in listed])
        # Leader markers (R13) and a switchover's request are zkelect's own, not foreign
        # nodes to report.
        ignored = {
            name
            for name in children
            if not name.startswith(LEADER_MARKER_PREFIX) and name != REQUEST_NODE
        }.difference(c.name for c in listed)
        found: list[Contender] = []
        for contender, item in zip(listed, got, strict=True):
            if item is None:
                if settle and not found:
                    break  # the leader left meanwhile: list again
                continue
            data, stat = item
            if stat.ephemeral_owner == 0:  # persistent: no session owns it, not a contender
                ignored.add(contender.name)
                continue
            found.append(read_node(contender, data, stat))
        else:
            return Snapshot(path, True, tuple(found), tuple(sorted(ignored)))
    raise ChangedTooFast(f"{path} changed too fast to read ({MAX_PASSES} tries); try again")


@dataclass(frozen=True)
class Elected:
    """When a leader was elected: ``ctime_ms`` (None: unknown) and where that comes from,
    ``source``: "marker" (its leader marker's ctime), "join" (its node's ctime: a zkelect
    leader leaves no marker only when it was first at its join, R13) or "unknown" (other
    recipes leave no trace: only when the node was created, its candidate joined)."""

    ctime_ms: int | None
    source: str


def read_elected(source: Reads, path: str, leader: Contender) -> Elected:
    """When ``leader`` (read by :func:`read_election`) was elected: one ``exists`` of its
    leader marker, trusted only if the leader's session owns it (R13).

    Curator's LeaderLatch names its nodes as zkelect does and makes no marker: its leader
    reads as one elected at its join (nothing in ZooKeeper tells the two apart). For a
    moment after a handover (until the marker, sent right after the flip, is created) a
    leader that waited reads as elected at its join too.
    """
    marker = leader_marker(leader.name) if leader.kind is ContenderKind.LATCH else None
    if marker is None:
        return Elected(None, "unknown")
    stat = source.exists(f"{path}/{marker}")
    if stat is not None and stat.ephemeral_owner == leader.session_id:
        return Elected(stat.ctime, "marker")
    return Elected(leader.ctime_ms, "join")


def read_leader(source: Reads, path: str, *, order: Order = election_order) -> Contender | None:
    """The first contender of ``path`` whose node a session owns, read; None if there is none,
    or if the leader kept leaving between listing and read for MAX_PASSES listings."""
    for _ in range(MAX_PASSES):
        try:
            children = source.children(path)
        except NoNode:
            return None
        for contender in order(children):
            got = source.get_many([f"{path}/{contender.name}"])[0]
            if got is None:
                break  # the leader left meanwhile: list again
            data, stat = got
            if stat.ephemeral_owner != 0:  # a persistent node is not a candidate
                return read_node(contender, data, stat)
        else:
            return None
    return None


def watch_leader(
    source: Reads,
    path: str,
    watches: Watches,
    ignored: set[str],
    *,
    order: Order = contender_order,
) -> Snapshot:
    """The leader of ``path`` read now, leaving the one watch ``watches`` wants (see the
    module docstring); the other contenders are listed, not read.

    ``ignored``: the caller's persistent nodes named like contenders, kept across calls
    (found when the leader's node is read; forgotten once deleted).
    """
    for _ in range(MAX_PASSES):
        try:
            children = source.children(path)
        except NoNode:
            if _path_created(source, path, watches):
                continue
            return Snapshot(path, exists=False)
        listed = _counted(order(children), children, ignored)
        if not listed:
            # Nobody to watch: learn about the first contender with a children watch.
            try:
                fresh = _watched(watches, WatchKind.CHILD, path, source.children)
            except NoNode:
                continue  # deleted meanwhile: no watch was set
            if fresh is None:
                return Snapshot(path, exists=True)
            listed = _counted(order(fresh), fresh, ignored)
            if not listed:
                return Snapshot(path, exists=True)
        leader, znode = listed[0], f"{path}/{listed[0].name}"
        try:
            got = _watched(watches, WatchKind.DATA, znode, source.get) or source.get(znode)
        except NoNode:
            continue  # the leader left between the two reads
        data, stat = got
        if stat.ephemeral_owner == 0:
            # Named like a contender, but persistent: not one (its watch, if set, tells
            # nothing and may wake us once more, for nothing).
            ignored.add(leader.name)
            watches.unset(WatchKind.DATA, znode)
            continue
        return Snapshot(path, True, (read_node(leader, data, stat), *listed[1:]))
    raise ChangedTooFast(f"{path} changed too fast to observe ({MAX_PASSES} tries)")


def _path_created(source: Reads, path: str, watches: Watches) -> bool:
    """Whether the missing ``path`` exists by now; leaves an ``exists`` watch if wanted."""
    return _watched(watches, WatchKind.DATA, path, source.exists) is not None


def _watched(watches: Watches, kind: WatchKind, znode: str, read: Callable[..., _T]) -> _T | None:
    """``read(znode, watch=...)`` with the watch ``watches`` wants; None (no read) if it wants
    none. A failed read may have set no watch: ``watches`` is told."""
    watch = watches.watcher(kind, znode)
    if watch is None:
        return None
    try:
        return read(znode, watch=watch)
    except BaseException:
        watches.unset(kind, znode)
        raise


def _counted(listed: list[Contender], children: list[str], ignored: set[str]) -> list[Contender]:
    """``listed`` without the ``ignored`` nodes; forgets those deleted meanwhile."""
    if not ignored:
        return listed
    ignored.intersection_update(children)
    return [c for c in listed if c.name not in ignored]
