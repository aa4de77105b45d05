"""Candidate nodes: naming, parsing and election order. Pure logic, no I/O.

Node names follow Apache Curator LeaderLatch so that Java services on Curator and
Python services on zkelect can share one election path::

    _c_<uuid4 with dashes>-latch-<sequence, at least 10 digits>

ZooKeeper appends the sequence: the parent's child counter, a *signed* 32-bit
integer printed with ``%010d``. It wraps from 2147483647 to -2147483648, after
which string order (what Curator and kazoo use) puts the newest node first. We
parse it as an integer and order with serial-number arithmetic (RFC 1982), which
is correct as long as the live candidates span fewer than 2**31 sequence numbers.
"""

from __future__ import annotations

import itertools
import operator
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

__all__ = [
    "LATCH_MARKER",
    "CandidateNode",
    "LeaderInfo",
    "Sequenced",
    "election_order",
    "new_node_prefix",
    "parse_node",
    "parse_sequence",
    "predecessor_of",
    "protected_guid",
    "serial_order",
]

LATCH_MARKER = "-latch-"
_PROTECTED_PREFIX = "_c_"
_SEQ_SPACE = 1 << 32
_HALF_SPACE = 1 << 31

_MARKER = "latch-"
_BY_SEQUENCE_THEN_NAME = operator.attrgetter("sequence", "name")
_GUID_LENGTH = 36


class Sequenced(Protocol):
    """Anything ordered by :func:`serial_order`: a child name and its parsed sequence.

    A protocol rather than a base class so that the contender types of other recipes
    (contenders.py) share one ordering without sharing a class with ours.
    """

    @property
    def name(self) -> str: ...

    @property
    def sequence(self) -> int: ...


S = TypeVar("S", bound=Sequenced)


class CandidateNode(NamedTuple):
    """One contender's znode name, parsed. (A tuple: thousands are parsed per change.)"""

    name: str
    sequence: int
    guid: str | None

    @property
    def unsigned_sequence(self) -> int:
        """The sequence as ZooKeeper's counter sees it, in [0, 2**32)."""
        return self.sequence % _SEQ_SPACE


def new_node_prefix(guid: str | None = None) -> str:
    """The name to create (ZooKeeper appends the sequence): ``_c_<guid>-latch-``.

    The GUID lets a candidate find its own node again after a create whose reply
    was lost (R1): one GUID per creation attempt, reused across its retries.
    """
    return f"{_PROTECTED_PREFIX}{guid or uuid.uuid4()}{LATCH_MARKER}"


def parse_sequence(text: str) -> int | None:
    """ZooKeeper's sequence suffix as a signed 32-bit integer; None if ``text`` is not one.

    The server prints the parent's signed counter with ``%010d``: ten digits, or a ``-``
    and nine digits after the wrap. Up to ten digits after an optional ``-`` are accepted
    (so hand-made names with fewer digits still parse); anything else is not a sequence.
    """
    body = text[1:] if text.startswith("-") else text
    if not (0 < len(body) <= 10 and body.isascii() and body.isdigit()):
        return None
    sequence = int(text)
    if not -_HALF_SPACE <= sequence < _HALF_SPACE:
        return None
    return sequence


def protected_guid(head: str) -> str | None:
    """The GUID of a Curator-style protected name's head ``_c_<36-char guid>-...``, or None.

    Shared by every recipe that uses Curator's ``withProtection()`` naming (LeaderLatch,
    LeaderSelector/InterProcessMutex), so a node is found again after a lost create reply.
    """
    start = len(_PROTECTED_PREFIX)
    if (
        head.startswith(_PROTECTED_PREFIX)
        and len(head) >= start + _GUID_LENGTH + 1
        and head[start + _GUID_LENGTH] == "-"
    ):
        return head[start : start + _GUID_LENGTH]
    return None


def parse_node(name: str) -> CandidateNode | None:
    """Parse a child name; None for children that are not candidate nodes.

    Accepted: ``[_c_<36-char guid>-]<anything>latch-<sequence>`` where the sequence is
    ZooKeeper's ``%010d`` of a signed 32-bit integer (so ``-`` and up to 10 digits).
    """
    head, marker, digits = name.rpartition(_MARKER)
    if not marker:
        return None
    sequence = parse_sequence(digits)
    if sequence is None:
        return None
    return CandidateNode(name, sequence, protected_guid(head))


def election_order(children: Iterable[str]) -> list[CandidateNode]:
    """Candidate nodes among ``children``, first (the leader) to last.

    Foreign children are ignored; the order is :func:`serial_order`'s.
    """
    return serial_order([node for node in map(parse_node, children) if node is not None])


def serial_order(nodes: Iterable[S]) -> list[S]:
    """``nodes`` from oldest to newest by their sequence numbers, correct across the wrap.

    One function for every recipe's nodes (ours, Curator's, kazoo's), so that an observer
    and a candidate can never disagree about who leads. Serial-number arithmetic: we find
    the widest gap on the 32-bit circle of sequence numbers; the node just after it is
    the oldest. Correct while the nodes span fewer than 2**31 sequence numbers. Ties
    (impossible within one parent) fall back to the name.
    """
    items = list(nodes)
    if len(items) < 2:
        return items
    sequences = [node.sequence for node in items]
    if max(sequences) - min(sequences) < _HALF_SPACE:
        # No wrap among them (the common case): signed order is creation order.
        return sorted(items, key=_BY_SEQUENCE_THEN_NAME)
    points = sorted({sequence % _SEQ_SPACE for sequence in sequences})
    start = points[0]
    widest = (points[0] + _SEQ_SPACE) - points[-1]  # the gap that wraps around
    for before, after in itertools.pairwise(points):
        if after - before > widest:
            widest, start = after - before, after
    return sorted(items, key=lambda n: ((n.sequence % _SEQ_SPACE - start) % _SEQ_SPACE, n.name))


def predecessor_of(order: Sequence[CandidateNode], name: str) -> CandidateNode | None:
    """The node just before ``name`` in election order; None if it leads or is absent."""
    for index, node in enumerate(order):
        if node.name == name:
            return order[index - 1] if index > 0 else None
    return None


@dataclass(frozen=True)
class LeaderInfo:
    """A contender as read from ZooKeeper: who, which node, which session, which epoch.

    ``epoch`` is the czxid of the node: for the leader, its fencing epoch (R5).
    """

    candidate_id: str
    epoch: int
    node: str
    session_id: int
    sequence: int

    @classmethod
    def from_node(cls, node: CandidateNode, data: bytes, czxid: int, owner: int) -> LeaderInfo:
        return cls(
            candidate_id=data.decode("utf-8", errors="replace"),
            epoch=czxid,
            node=node.name,
            session_id=owner,
            sequence=node.sequence,
        )
