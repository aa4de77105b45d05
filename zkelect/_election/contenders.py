"""Contender nodes of the three election recipes on ZooKeeper, parsed into one type
(nodes.Contender). Pure logic.

Why: an observer (the exporter, ``zkelect status`` on a foreign path) must tell who leads an
election run by *any* of the common recipes, and must agree with the candidates about it.
All of them create EPHEMERAL_SEQUENTIAL children whose names end in a recipe-specific marker
and ZooKeeper's sequence suffix; the leader (lock holder) is the oldest node. The names:

======================================  =============================================  ==========
recipe                                  child name                                     node data
======================================  =============================================  ==========
zkelect, Curator ``LeaderLatch``        ``_c_<uuid with dashes>-latch-<seq>``          the id
Curator ``LeaderSelector``,             ``_c_<uuid with dashes>-lock-<seq>``           the id (1)
``InterProcessMutex``
kazoo ``Lock``, ``Election``,           ``<uuid4 hex>__lock__<seq>``                   identifier
``WriteLock``
kazoo ``ReadLock``                      ``<uuid4 hex>__rlock__<seq>``                  identifier
======================================  =============================================  ==========

(1) Curator stores the framework's default data (the client's IP address) when no id is set.
kazoo 2.11 has no ``__wlock__`` node: its ``WriteLock`` creates ``__lock__`` nodes. A read
lock may be held by several readers at once, so "the leader" of a read/write lock path is just
its oldest contender; the notion only means "leader" for election paths.

Ordering is :func:`zkelect._election.nodes.serial_order`, the one zkelect's candidates use: by the
sequence number as a signed 32-bit integer with serial-number arithmetic, so it stays correct
after ZooKeeper's counter wraps, where Curator's and kazoo's own string sort (and kazoo's
``-?\\d{10}`` pattern) go wrong. Sequences come from the parent's single counter, so nodes of
different recipes under one parent are ordered consistently too.
"""

from __future__ import annotations

from collections.abc import Iterable

from zkelect._election.nodes import (
    Contender,
    ContenderKind,
    parse_node,
    parse_sequence,
    protected_guid,
    serial_order,
)

__all__ = [
    "contender_order",
    "leader_of",
    "parse_contender",
]

_KAZOO_LOCK = "__lock__"
_KAZOO_READ_LOCK = "__rlock__"
_CURATOR_LOCK = "lock-"
_KAZOO_GUID_LENGTH = 32
_HEX = frozenset("0123456789abcdef")


def _split(name: str, marker: str) -> tuple[str, int] | None:
    head, found, digits = name.rpartition(marker)
    if not found:
        return None
    sequence = parse_sequence(digits)
    return None if sequence is None else (head, sequence)


def _kazoo_guid(head: str) -> str | None:
    if len(head) == _KAZOO_GUID_LENGTH and _HEX.issuperset(head):
        return head
    return None


def parse_contender(name: str) -> Contender | None:
    """Parse one child name; None for children that are no recipe's contender.

    The markers cannot be confused: ``latch-`` and ``lock-`` end in a dash, kazoo's in two
    underscores, and none of them can occur in a UUID. As for zkelect's own candidates, the
    head before the marker is not checked (so is the ``_c_`` prefix): a recipe's unprotected
    or hand-made node is still a contender to the recipe, so it is one to an observer too.
    """
    latch = parse_node(name)
    if latch is not None:
        return latch
    for marker, kind in (
        (_KAZOO_LOCK, ContenderKind.KAZOO_LOCK),
        (_KAZOO_READ_LOCK, ContenderKind.KAZOO_READ_LOCK),
    ):
        split = _split(name, marker)
        if split is not None:
            return Contender(name, split[1], kind, _kazoo_guid(split[0]))
    split = _split(name, _CURATOR_LOCK)
    if split is not None:
        return Contender(name, split[1], ContenderKind.CURATOR_LOCK, protected_guid(split[0]))
    return None


def contender_order(children: Iterable[str]) -> list[Contender]:
    """The contenders among ``children``, the leader first; other children are ignored."""
    return serial_order([c for c in map(parse_contender, children) if c is not None])


def leader_of(children: Iterable[str]) -> Contender | None:
    """The contender that leads (holds the lock), or None when there is none."""
    order = contender_order(children)
    return order[0] if order else None
